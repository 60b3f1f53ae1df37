// binding.cpp -- torch binding of the harness kernels: validates tensors, allocates outputs and
// dispatches on dtype (float32 / float64) and device (C kernels on the CPU; CUDA launchers when
// compiled with -DHARNESS_WITH_CUDA). No arithmetic happens here.
#include <torch/extension.h>

#include <cstdint>
#include <tuple>
#include <vector>

#include "harness_kernels.h"
#ifdef HARNESS_WITH_CUDA
#include <ATen/cuda/CUDAContext.h>
#include <c10/cuda/CUDAGuard.h>

#include "harness_kernels_cuda.h"
#endif

namespace {

using OptTensor = c10::optional<torch::Tensor>;

// Kernel table per scalar type.
template <typename T>
struct Kern;

#ifdef HARNESS_WITH_CUDA
#define HK_CUDA_ENTRIES(SUF)                                                 \
    static constexpr auto conv_fwd_cuda = harness_conv2d_fwd_##SUF##_cuda;               \
    static constexpr auto conv_bwd_input_cuda = harness_conv2d_bwd_input_##SUF##_cuda;   \
    static constexpr auto conv_bwd_weight_cuda = harness_conv2d_bwd_weight_##SUF##_cuda; \
    static constexpr auto bn_fwd_train_cuda = harness_bn_fwd_train_##SUF##_cuda;         \
    static constexpr auto bn_apply_cuda = harness_bn_apply_##SUF##_cuda;                 \
    static constexpr auto bn_bwd_train_cuda = harness_bn_bwd_train_##SUF##_cuda;
#else
#define HK_CUDA_ENTRIES(SUF)
#endif

#define HK_ENTRIES(SUF)                                                      \
    static constexpr auto conv_fwd = harness_conv2d_fwd_##SUF;               \
    static constexpr auto conv_bwd_input = harness_conv2d_bwd_input_##SUF;   \
    static constexpr auto conv_bwd_weight = harness_conv2d_bwd_weight_##SUF; \
    static constexpr auto bn_fwd_train = harness_bn_fwd_train_##SUF;         \
    static constexpr auto bn_apply = harness_bn_apply_##SUF;                 \
    static constexpr auto bn_bwd_train = harness_bn_bwd_train_##SUF;         \
    HK_CUDA_ENTRIES(SUF)

template <>
struct Kern<float> {
    HK_ENTRIES(f)
};
template <>
struct Kern<double> {
    HK_ENTRIES(d)
};

#ifdef HARNESS_WITH_CUDA
#define HK_CALL(x, FN, ...)                                                                  \
    do {                                                                                     \
        if ((x).is_cuda()) {                                                                 \
            const c10::cuda::CUDAGuard guard_((x).device());                                 \
            Kern<scalar_t>::FN##_cuda(__VA_ARGS__, at::cuda::getCurrentCUDAStream().stream()); \
        } else {                                                                             \
            Kern<scalar_t>::FN(__VA_ARGS__);                                                 \
        }                                                                                    \
    } while (0)
#else
#define HK_CALL(x, FN, ...)                                                                  \
    do {                                                                                     \
        TORCH_CHECK(!(x).is_cuda(), "this harness kernel build has no CUDA support");       \
        Kern<scalar_t>::FN(__VA_ARGS__);                                                     \
    } while (0)
#endif

void check_like(const torch::Tensor &t, const char *name, const torch::Tensor &like) {
    TORCH_CHECK(t.is_contiguous(), name, " must be contiguous");
    TORCH_CHECK(t.scalar_type() == like.scalar_type(), name, " must have dtype ",
                like.scalar_type(), ", got ", t.scalar_type());
    TORCH_CHECK(t.device() == like.device(), name, " must be on ", like.device(), ", got ",
                t.device());
}

template <typename T>
T *ptr(const torch::Tensor &t) {
    return t.data_ptr<T>();
}

template <typename T>
T *opt_ptr(const OptTensor &t, const char *name, const torch::Tensor &like) {
    if (!t.has_value() || !t->defined()) return nullptr;
    check_like(*t, name, like);
    return t->data_ptr<T>();
}

harness_conv_shape conv_shape(const torch::Tensor &x, int64_t K, int64_t R, int64_t S,
                              const std::vector<int64_t> &stride, const std::vector<int64_t> &pad,
                              const std::vector<int64_t> &dil) {
    TORCH_CHECK(x.dim() == 4, "conv2d expects a 4-D (N, C, H, W) tensor, got ", x.dim(), "-D");
    TORCH_CHECK(stride.size() == 2 && pad.size() == 2 && dil.size() == 2,
                "stride, padding and dilation must have two entries");
    TORCH_CHECK(x.scalar_type() == torch::kFloat32 || x.scalar_type() == torch::kFloat64,
                "harness kernels support float32 and float64, got ", x.scalar_type());
    harness_conv_shape s;
    s.N = x.size(0), s.C = x.size(1), s.H = x.size(2), s.W = x.size(3);
    s.K = K, s.R = R, s.S = S;
    s.stride_h = stride[0], s.stride_w = stride[1];
    s.pad_h = pad[0], s.pad_w = pad[1];
    s.dil_h = dil[0], s.dil_w = dil[1];
    s.P = (s.H + 2 * s.pad_h - s.dil_h * (R - 1) - 1) / s.stride_h + 1;
    s.Q = (s.W + 2 * s.pad_w - s.dil_w * (S - 1) - 1) / s.stride_w + 1;
    TORCH_CHECK(s.P > 0 && s.Q > 0, "convolution output would be empty");
    return s;
}

torch::Tensor conv2d_forward(torch::Tensor x, torch::Tensor w, OptTensor b,
                             std::vector<int64_t> stride, std::vector<int64_t> padding,
                             std::vector<int64_t> dilation, int64_t seed, int64_t call) {
    auto s = conv_shape(x, w.size(0), w.size(2), w.size(3), stride, padding, dilation);
    check_like(x, "input", x);
    check_like(w, "weight", x);
    TORCH_CHECK(w.dim() == 4 && w.size(1) == s.C, "weight must be (K, C, R, S) with C = ", s.C);
    auto y = torch::empty({s.N, s.K, s.P, s.Q}, x.options());
    AT_DISPATCH_FLOATING_TYPES(x.scalar_type(), "harness_conv2d_forward", [&] {
        HK_CALL(x, conv_fwd, ptr<scalar_t>(x), ptr<scalar_t>(w), opt_ptr<scalar_t>(b, "bias", x),
                ptr<scalar_t>(y), &s, (uint64_t)seed, (uint32_t)call);
    });
    return y;
}

torch::Tensor conv2d_backward_input(torch::Tensor gy, torch::Tensor w, std::vector<int64_t> input_size,
                                    std::vector<int64_t> stride, std::vector<int64_t> padding,
                                    std::vector<int64_t> dilation, int64_t seed, int64_t call) {
    TORCH_CHECK(input_size.size() == 4, "input_size must be (N, C, H, W)");
    auto gx = torch::empty(input_size, gy.options());
    auto s = conv_shape(gx, w.size(0), w.size(2), w.size(3), stride, padding, dilation);
    check_like(gy, "grad_output", gy);
    check_like(w, "weight", gy);
    TORCH_CHECK(gy.size(0) == s.N && gy.size(1) == s.K && gy.size(2) == s.P && gy.size(3) == s.Q,
                "grad_output has the wrong shape");
    AT_DISPATCH_FLOATING_TYPES(gy.scalar_type(), "harness_conv2d_backward_input", [&] {
        HK_CALL(gy, conv_bwd_input, ptr<scalar_t>(gy), ptr<scalar_t>(w), ptr<scalar_t>(gx), &s,
                (uint64_t)seed, (uint32_t)call);
    });
    return gx;
}

std::tuple<torch::Tensor, torch::Tensor> conv2d_backward_weight(
    torch::Tensor x, torch::Tensor gy, std::vector<int64_t> weight_size, bool with_bias,
    std::vector<int64_t> stride, std::vector<int64_t> padding, std::vector<int64_t> dilation,
    int64_t seed, int64_t call) {
    TORCH_CHECK(weight_size.size() == 4, "weight_size must be (K, C, R, S)");
    auto s = conv_shape(x, weight_size[0], weight_size[2], weight_size[3], stride, padding, dilation);
    check_like(x, "input", x);
    check_like(gy, "grad_output", x);
    TORCH_CHECK(gy.size(0) == s.N && gy.size(1) == s.K && gy.size(2) == s.P && gy.size(3) == s.Q,
                "grad_output has the wrong shape");
    auto gw = torch::empty(weight_size, x.options());
    auto gb = with_bias ? torch::empty({s.K}, x.options()) : torch::Tensor();
    AT_DISPATCH_FLOATING_TYPES(x.scalar_type(), "harness_conv2d_backward_weight", [&] {
        HK_CALL(x, conv_bwd_weight, ptr<scalar_t>(x), ptr<scalar_t>(gy), ptr<scalar_t>(gw),
                with_bias ? ptr<scalar_t>(gb) : nullptr, &s, (uint64_t)seed, (uint32_t)call);
    });
    return {gw, gb};
}

void check_bn(const torch::Tensor &x) {
    TORCH_CHECK(x.dim() == 4, "batchnorm2d expects a 4-D (N, C, H, W) tensor, got ", x.dim(), "-D");
    TORCH_CHECK(x.scalar_type() == torch::kFloat32 || x.scalar_type() == torch::kFloat64,
                "harness kernels support float32 and float64, got ", x.scalar_type());
    check_like(x, "input", x);
}

std::tuple<torch::Tensor, torch::Tensor, torch::Tensor> bn_forward_train(
    torch::Tensor x, OptTensor gamma, OptTensor beta, OptTensor running_mean, OptTensor running_var,
    double eps, double momentum, int64_t seed, int64_t call) {
    check_bn(x);
    const int64_t N = x.size(0), C = x.size(1), HW = x.size(2) * x.size(3);
    TORCH_CHECK(N * HW > 0, "batchnorm2d needs at least one value per channel");
    auto y = torch::empty_like(x);
    auto mean = torch::empty({C}, x.options());
    auto invstd = torch::empty({C}, x.options());
    AT_DISPATCH_FLOATING_TYPES(x.scalar_type(), "harness_bn_forward_train", [&] {
        HK_CALL(x, bn_fwd_train, ptr<scalar_t>(x), opt_ptr<scalar_t>(gamma, "weight", x),
                opt_ptr<scalar_t>(beta, "bias", x), ptr<scalar_t>(y), ptr<scalar_t>(mean),
                ptr<scalar_t>(invstd), opt_ptr<scalar_t>(running_mean, "running_mean", x),
                opt_ptr<scalar_t>(running_var, "running_var", x), N, C, HW, eps, momentum,
                (uint64_t)seed, (uint32_t)call);
    });
    return {y, mean, invstd};
}

torch::Tensor bn_apply(torch::Tensor x, OptTensor gamma, OptTensor beta, torch::Tensor mean,
                       torch::Tensor invstd, int64_t seed, int64_t call) {
    check_bn(x);
    check_like(mean, "mean", x);
    check_like(invstd, "invstd", x);
    const int64_t N = x.size(0), C = x.size(1), HW = x.size(2) * x.size(3);
    auto y = torch::empty_like(x);
    AT_DISPATCH_FLOATING_TYPES(x.scalar_type(), "harness_bn_apply", [&] {
        HK_CALL(x, bn_apply, ptr<scalar_t>(x), opt_ptr<scalar_t>(gamma, "weight", x),
                opt_ptr<scalar_t>(beta, "bias", x), ptr<scalar_t>(mean), ptr<scalar_t>(invstd),
                ptr<scalar_t>(y), N, C, HW, (uint64_t)seed, (uint32_t)call);
    });
    return y;
}

std::tuple<torch::Tensor, torch::Tensor, torch::Tensor> bn_backward_train(
    torch::Tensor x, torch::Tensor gy, OptTensor gamma, torch::Tensor mean, torch::Tensor invstd,
    int64_t seed, int64_t call) {
    check_bn(x);
    check_like(gy, "grad_output", x);
    check_like(mean, "mean", x);
    check_like(invstd, "invstd", x);
    const int64_t N = x.size(0), C = x.size(1), HW = x.size(2) * x.size(3);
    auto gx = torch::empty_like(x);
    auto ggamma = torch::empty({C}, x.options());
    auto gbeta = torch::empty({C}, x.options());
    AT_DISPATCH_FLOATING_TYPES(x.scalar_type(), "harness_bn_backward_train", [&] {
        HK_CALL(x, bn_bwd_train, ptr<scalar_t>(x), ptr<scalar_t>(gy),
                opt_ptr<scalar_t>(gamma, "weight", x), ptr<scalar_t>(mean), ptr<scalar_t>(invstd),
                ptr<scalar_t>(gx), ptr<scalar_t>(ggamma), ptr<scalar_t>(gbeta), N, C, HW,
                (uint64_t)seed, (uint32_t)call);
    });
    return {gx, ggamma, gbeta};
}

std::vector<int64_t> philox_block(std::vector<int64_t> ctr, std::vector<int64_t> key) {
    TORCH_CHECK(ctr.size() == 4 && key.size() == 2, "philox_block needs 4 counter and 2 key words");
    uint32_t c[4], k[2], out[4];
    for (int i = 0; i < 4; ++i) c[i] = (uint32_t)ctr[i];
    for (int i = 0; i < 2; ++i) k[i] = (uint32_t)key[i];
    harness_philox_block(c, k, out);
    return {out[0], out[1], out[2], out[3]};
}

bool has_cuda() {
#ifdef HARNESS_WITH_CUDA
    return true;
#else
    return false;
#endif
}

}  // namespace

PYBIND11_MODULE(TORCH_EXTENSION_NAME, m) {
    m.doc() = "harness instrumented conv2d / batchnorm2d kernels";
    m.def("conv2d_forward", &conv2d_forward);
    m.def("conv2d_backward_input", &conv2d_backward_input);
    m.def("conv2d_backward_weight", &conv2d_backward_weight);
    m.def("bn_forward_train", &bn_forward_train);
    m.def("bn_apply", &bn_apply);
    m.def("bn_backward_train", &bn_backward_train);
    m.def("philox_block", &philox_block);
    m.def("mode_name", []() { return std::string(harness_mode_name()); });
    m.def("has_cuda", &has_cuda);
}
