"""Compile every Triton kernel variant the entry points launch for sm_90, without a GPU.

Run by tests/test_perturb_triton.py in a subprocess with ``TRITON_INTERPRET=0`` (the kernels must
be compiled ones); prints ``{variant: [floating-point PTX instructions]}`` as JSON. Triton's
compiler and its bundled ptxas need no GPU for this.
"""

from __future__ import annotations

import json
import re
import sys

import triton
import triton.language as tl
from triton.backends.compiler import GPUTarget

from harness.perturb import triton_kernels as tk

TARGET = GPUTarget("cuda", 90, 32)
_TL = {"int64": tl.int64, "int32": tl.int32, "int16": tl.int16}
_PTR = {
    "float64": "*fp64",
    "float32": "*fp32",
    "float16": "*fp16",
    "int32": "*i32",
    "int16": "*i16",
}
FLOAT_OPS = re.compile(
    r"\b((?:div|fma|mul|add|sub|cvt|neg|abs|min|max|sqrt|rcp)\.[.\w]*f(?:16|32|64)\b)"
)


def _name(dtype) -> str:
    return str(dtype).removeprefix("torch.")


def variants():
    """(name, kernel, signature, constexprs) of every launch the entry points make."""
    block = {"BLOCK": tk._BLOCK}
    for seed in ("i32", "u64"):  # small keys and keys >= 2^63 compile separately
        yield (
            f"uniform-{seed}",
            tk._uniform_kernel,
            {"out_ptr": "*fp32", "n": "i32", "seed": seed},
            block,
        )
        yield (f"rr-float32-{seed}", tk._rr_fp32_kernel,
               {"y_ptr": "*fp32", "n": "i32", "seed": seed, "alpha": "fp32"}, block)  # fmt: skip
        for dtype, (int_dtype, mag, inf) in tk._UD_LAYOUT.items():
            yield (f"ud-{_name(dtype)}-{seed}", tk._ud_kernel,
                   {"y_ptr": _PTR[_name(int_dtype)], "n": "i32", "seed": seed},
                   {"MAG": mag, "INF": inf, "INT": _TL[_name(int_dtype)], **block})  # fmt: skip
        for (wide, dtype), (exp, top, tiny, int_name) in tk._SR_PAIRS.items():
            yield (f"sr-{_name(wide)}-{_name(dtype)}-{seed}", tk._sr_kernel,
                   {"wide_ptr": _PTR[_name(wide)], "out_ptr": _PTR[_name(dtype)], "n": "i32",
                    "seed": seed, "alpha": "fp32"},
                   {"TINY": tiny, "EXP": exp, "TOP": top, "INT": _TL[int_name], **block})  # fmt: skip


def main() -> int:
    if tk.INTERPRETED:
        sys.exit("run with TRITON_INTERPRET=0: the kernels are interpreted in this process")
    report = {}
    for name, kernel, signature, constexprs in variants():
        signature = {**signature, **{k: "constexpr" for k in constexprs}}
        source = triton.compiler.ASTSource(fn=kernel, signature=signature, constexprs=constexprs)
        compiled = triton.compile(source, target=TARGET, options=tk._OPTIONS)
        assert compiled.asm["cubin"], name
        report[name] = sorted(set(FLOAT_OPS.findall(compiled.asm["ptx"])))
    print(json.dumps(report))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
