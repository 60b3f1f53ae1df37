"""Which ATen operations the engine perturbs: op name -> :class:`Policy`.

Names are overload packets as ``str(torch.ops.aten.add)`` prints them (``"aten.add"``).
Beyond this table the engine never perturbs view outputs, non-float outputs or ops tagged
``nondeterministic_seeded`` (random number generation), whatever the policy says.
"""

from __future__ import annotations

from enum import Enum

import torch

from harness.enums import parse_enum
from harness.errors import InputError


class Policy(Enum):
    """What the engine does with an op's floating-point outputs.

    Every op has one, the unknown ones too (``unknown_ops`` picks theirs): unlike
    :class:`harness.enums.OnUnknown` (skip or refuse what a component cannot handle), both
    choices are ways of running the op.
    """

    PERTURB = "perturb"
    SKIP = "skip"

    @classmethod
    def parse(cls, value: Policy | str) -> Policy:
        return parse_enum(cls, value, "unknown_ops")


# Ops whose result needs no rounding (copies, views, selections, factories, sign flips) or that
# draw random numbers: perturbing them would model arithmetic that does not happen.
_SKIP = """
view _unsafe_view reshape as_strided as_strided_ transpose transpose_ permute expand expand_as
slice select t t_ detach detach_ alias unsqueeze unsqueeze_ squeeze squeeze_ unbind split
split_with_sizes chunk narrow unfold view_as_real view_as_complex movedim flatten unflatten
profiler._record_function_enter_new profiler._record_function_exit
clone copy copy_ _copy_from _copy_from_and_resize _to_copy contiguous lift_fresh lift_fresh_copy
_local_scalar_dense resize_ set_ _reshape_alias
empty empty_like empty_strided new_empty new_empty_strided zeros zeros_like new_zeros ones ones_like
new_ones full full_like new_full fill fill_ zero_ scalar_tensor arange linspace logspace eye
rand rand_like randn randn_like randint randint_like randperm normal normal_ uniform_ bernoulli
bernoulli_ exponential_ geometric_ cauchy_ log_normal_ random_ native_dropout dropout multinomial
eq ne lt le gt ge isnan isinf isfinite isneginf isposinf signbit logical_and logical_or logical_not
logical_xor any all argmax argmin nonzero
max min amax amin maximum minimum fmax fmin max_pool2d_with_indices max_pool3d_with_indices
max_unpool2d max_unpool3d relu relu_ threshold_backward abs abs_ neg neg_ sign sgn clamp clamp_
clamp_min clamp_min_ clamp_max clamp_max_ hardtanh hardtanh_ where masked_fill masked_fill_
masked_select masked_scatter index_select gather scatter scatter_ index_put index_put_ take cat
stack constant_pad_nd reflection_pad2d replication_pad2d flip roll repeat sort topk floor ceil
round trunc frac_ nan_to_num
""".split()

# Ops known to round (listed so that include/exclude lists and histories can name them).
_PERTURB = """
add add_ sub sub_ rsub mul mul_ div div_ addmm mm bmm baddbmm addmv matmul dot linear addcmul
addcmul_ addcdiv addcdiv_ lerp lerp_ convolution convolution_backward cudnn_convolution
native_batch_norm native_batch_norm_backward _native_batch_norm_legit
_native_batch_norm_legit_functional _native_batch_norm_legit_no_training cudnn_batch_norm
cudnn_batch_norm_backward native_layer_norm native_layer_norm_backward native_group_norm
native_group_norm_backward sqrt sqrt_ rsqrt exp exp_ log log_ log1p expm1 pow pow_ reciprocal
sum mean var var_mean std std_mean prod cumsum _softmax _log_softmax _softmax_backward_data
_log_softmax_backward_data nll_loss_forward nll_loss_backward nll_loss2d_forward
nll_loss2d_backward mse_loss mse_loss_backward sigmoid sigmoid_backward tanh tanh_backward
_prelu_kernel _prelu_kernel_backward leaky_relu leaky_relu_backward gelu gelu_backward silu
silu_backward elu elu_backward softplus softplus_backward hardswish avg_pool2d
avg_pool2d_backward max_pool2d_with_indices_backward upsample_bilinear2d upsample_nearest2d
linalg_vector_norm norm _foreach_add _foreach_add_ _foreach_mul _foreach_mul_ _foreach_div
_foreach_div_ _foreach_sqrt _foreach_sqrt_ _foreach_addcmul_ _foreach_addcdiv_ _foreach_lerp_
_fused_adam_ _fused_adamw_
""".split()


def _qualified(name: str) -> str:
    return name if "." in name else f"aten.{name}"


#: default policy of each named op.
REGISTRY: dict[str, Policy] = {
    **{_qualified(name): Policy.PERTURB for name in _PERTURB},
    **{_qualified(name): Policy.SKIP for name in _SKIP},
}


def packet_name(func) -> str:
    """``"aten.add"`` for ``torch.ops.aten.add.Tensor``."""
    return str(func.overloadpacket)


def check_op_names(parameter: str, names) -> frozenset[str]:
    """Validate user op names (``"aten.convolution"`` or ``"aten.add.Tensor"``)."""
    if names is None:
        return frozenset()
    if isinstance(names, str):
        names = [names]
    checked = []
    for name in names:
        parts = name.split(".") if isinstance(name, str) else []
        namespace = getattr(torch.ops, parts[0], None) if len(parts) >= 2 else None
        packet = getattr(namespace, parts[1], None) if namespace is not None else None
        if packet is None or (len(parts) == 3 and not hasattr(packet, parts[2])) or len(parts) > 3:
            raise InputError(
                f"{parameter} entries must name an ATen op like 'aten.convolution' or "
                f"'aten.add.Tensor', got {name!r}"
            )
        checked.append(name)
    return frozenset(checked)
