// Fused CPU kernels of the stochastic-arithmetic engine: random numbers and rounding in one
// pass over memory, parallel over elements.
//
// Random stream: element i of the stream with 64-bit key k gets the word
//   w_i = mix64(k xor ((i + 1) * 0x9E3779B97F4A7C15))
// with mix64 SplitMix64's output function (Steele, Lea and Flood 2014): a counter-based hash, so
// any element is reachable without generating the ones before it, and (unlike SplitMix64's own
// k + i * gamma sequence) the streams of two keys are never shifted copies of each other. harness/perturb/rng.py computes the same
// words with numpy (the fallback when this extension cannot be built, and the test oracle).
//   uniform u = (w >> 12) * 2^-52 in [0, 1); rr noise xi = u - 1/2; ud direction = top bit.
//
// All arithmetic is done in double: every input dtype (fp64, fp32, fp16, bf16) converts to it
// exactly, and the formulas are those of harness/perturb/rounding.py (docs/design.md, "Arithmetic modes").
#include <torch/extension.h>

#include <ATen/Parallel.h>
#include <c10/util/BFloat16.h>
#include <c10/util/Half.h>

#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>

namespace {

// per-element functions must inline into the loops (gcc otherwise calls them out of line)
#define HARNESS_INLINE inline __attribute__((always_inline))

constexpr uint64_t kGolden = 0x9E3779B97F4A7C15ULL;
constexpr int64_t kGrain = 1 << 15;

enum Kind : int64_t { kRR = 0, kSR = 1, kUD = 2 };

HARNESS_INLINE uint64_t mix64(uint64_t z) {
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
  return z ^ (z >> 31);
}

HARNESS_INLINE uint64_t word(uint64_t key, int64_t i) {
  return mix64(key ^ (static_cast<uint64_t>(i + 1) * kGolden));
}

// u in [0, 1) on a grid of 2^-52: the top 52 bits as the fraction of a double in [1, 2), minus 1
// (bit operations only, so the loops vectorise)
HARNESS_INLINE double uniform52(uint64_t w) {
  uint64_t one = 0x3FF0000000000000ULL;
  double in_one_two;
  uint64_t b = one | (w >> 12);
  std::memcpy(&in_one_two, &b, sizeof b);
  return in_one_two - 1.0;
}

HARNESS_INLINE uint64_t bits_of(double x) {
  uint64_t b;
  std::memcpy(&b, &x, sizeof b);
  return b;
}

HARNESS_INLINE double double_of(uint64_t b) {
  double x;
  std::memcpy(&x, &b, sizeof x);
  return x;
}

// 2^(e(y) - 1) with y = m 2^e(y), 0.5 <= |m| < 1; 0 for zero and double subnormals.
HARNESS_INLINE double exponent_scale(double y) { return double_of(bits_of(y) & 0x7FF0000000000000ULL); }

template <typename T>
struct Traits;
template <>
struct Traits<double> {
  static constexpr int p = 53;
};
template <>
struct Traits<float> {
  static constexpr int p = 24;
};
template <>
struct Traits<c10::Half> {
  static constexpr int p = 11;
};
template <>
struct Traits<c10::BFloat16> {
  static constexpr int p = 8;
};

template <typename T>
inline double smallest_normal() {
  return static_cast<double>(std::numeric_limits<T>::min());
}

// spacing of T's subnormals, 2^(emin + 1 - p): the finest grid stochastic rounding may use
template <typename T>
inline double smallest_spacing() {
  return std::ldexp(smallest_normal<T>(), 1 - Traits<T>::p);
}

// converting through float first, as torch's own double -> half/bfloat16 conversion does
template <typename T>
inline T narrow(double x) {
  return static_cast<T>(static_cast<float>(x));
}
template <>
inline double narrow<double>(double x) {
  return x;
}
template <>
inline float narrow<float>(double x) {
  return static_cast<float>(x);
}

HARNESS_INLINE bool is_finite(double y) {
  return (bits_of(y) & 0x7FF0000000000000ULL) != 0x7FF0000000000000ULL;
}

// MCA random rounding: y + 2^(e(y) - t) xi, with step = 2^(1 - t); zero, subnormals (of the
// working type), inf and NaN are unchanged, as in rounding.random_rounding_. The fma keeps the
// noise exact where it would underflow (fp64 values near the subnormal range); elsewhere the
// product is exact anyway.
HARNESS_INLINE double random_rounding(double y, double tiny, double step, uint64_t w) {
  double xi = uniform52(w) - 0.5;
  double moved = std::fma(xi * step, exponent_scale(y), y);
  return (is_finite(y) & (std::fabs(y) >= tiny)) ? moved : y;
}

// stochastic rounding of y to the grid 2^(e(y) - t) (step = 2^(1 - t), t <= 52), never finer
// than finest: away from zero with probability (|y| - lo) / (hi - lo), lo <= |y| <= hi the
// neighbouring grid points of the magnitude (the same distribution as rounding up with
// probability (y - lo) / (hi - lo)). Branch-free so that the loops vectorise.
HARNESS_INLINE double stochastic_rounding(double y, double tiny, double step, double finest,
                                          uint64_t w) {
  // subnormals of the input type have no exponent of their own: they take the finest grid
  double scale = std::fabs(y) >= tiny ? exponent_scale(y) : 0.0;
  double spacing = scale * step;
  spacing = spacing < finest ? finest : spacing;
  double scaled = std::fabs(y) / spacing;  // exact: a power of two; < 2^52 for finite y
  double nearest = (scaled + 0x1p52) - 0x1p52;  // round to nearest integer (|x| < 2^52)
  double lower = nearest > scaled ? nearest - 1.0 : nearest;
  double away = uniform52(w) < scaled - lower ? 1.0 : 0.0;
  double rounded = std::copysign((lower + away) * spacing, y);
  return is_finite(y) ? rounded : y;
}

template <typename T, typename I>
HARNESS_INLINE T up_down(T y, uint64_t w) {
  static_assert(sizeof(T) == sizeof(I), "integer view of the float type");
  I bits;
  std::memcpy(&bits, &y, sizeof bits);
  constexpr int width = 8 * sizeof(I);
  const I sign = static_cast<I>(I(1) << (width - 1));
  const I magnitude = static_cast<I>(bits & static_cast<I>(~sign));
  const I inf_bits = [] {
    T inf = std::numeric_limits<T>::infinity();
    I b;
    std::memcpy(&b, &inf, sizeof b);
    return b;
  }();
  if (magnitude == 0 || magnitude >= inf_bits) return y;
  const bool toward_plus = (w >> 63) != 0;
  const bool negative = (bits & sign) != 0;
  // in sign-magnitude encoding +1 on the integer moves away from zero
  bits = (toward_plus != negative) ? static_cast<I>(bits + 1) : static_cast<I>(bits - 1);
  T out;
  std::memcpy(&out, &bits, sizeof out);
  return out;
}

template <typename T>
struct IntOf;
template <>
struct IntOf<double> {
  using type = uint64_t;
};
template <>
struct IntOf<float> {
  using type = uint32_t;
};
template <>
struct IntOf<c10::Half> {
  using type = uint16_t;
};
template <>
struct IntOf<c10::BFloat16> {
  using type = uint16_t;
};

template <typename T>
void perturb_loop(T* data, int64_t n, int64_t kind, int t, uint64_t key) {
  const double tiny = smallest_normal<T>();
  const double finest = smallest_spacing<T>();
  const double step = std::ldexp(1.0, 1 - t);
  at::parallel_for(0, n, kGrain, [&](int64_t begin, int64_t end) {
    if (kind == kUD) {
      for (int64_t i = begin; i < end; ++i) {
        data[i] = up_down<T, typename IntOf<T>::type>(data[i], word(key, i));
      }
    } else if (kind == kRR) {
      for (int64_t i = begin; i < end; ++i) {
        data[i] = narrow<T>(random_rounding(static_cast<double>(data[i]), tiny, step, word(key, i)));
      }
    } else {
      for (int64_t i = begin; i < end; ++i) {
        data[i] = narrow<T>(
            stochastic_rounding(static_cast<double>(data[i]), tiny, step, finest, word(key, i)));
      }
    }
  });
}

template <typename W, typename T>
void from_wide_loop(const W* wide, T* out, int64_t n, int64_t kind, int t, uint64_t key) {
  const double tiny = smallest_normal<W>();
  const double finest = smallest_spacing<T>();
  const double step = std::ldexp(1.0, 1 - t);
  at::parallel_for(0, n, kGrain, [&](int64_t begin, int64_t end) {
    if (kind == kRR) {
      for (int64_t i = begin; i < end; ++i) {
        out[i] = narrow<T>(random_rounding(static_cast<double>(wide[i]), tiny, step, word(key, i)));
      }
    } else {
      for (int64_t i = begin; i < end; ++i) {
        out[i] = narrow<T>(
            stochastic_rounding(static_cast<double>(wide[i]), tiny, step, finest, word(key, i)));
      }
    }
  });
}

int64_t significand_bits(at::ScalarType type) {
  switch (type) {
    case at::kDouble: return Traits<double>::p;
    case at::kFloat: return Traits<float>::p;
    case at::kHalf: return Traits<c10::Half>::p;
    case at::kBFloat16: return Traits<c10::BFloat16>::p;
    default: TORCH_CHECK(false, "unsupported dtype ", type);
  }
}

void check_tensor(const at::Tensor& x, const char* name) {
  TORCH_CHECK(x.device().is_cpu(), name, " must be a CPU tensor");
  TORCH_CHECK(x.is_contiguous(), name, " must be contiguous");
}

// In place: rr (kind 0), sr to t bits of y's own dtype (kind 1) or ud (kind 2).
void perturb_(at::Tensor y, int64_t kind, int64_t t, int64_t key) {
  check_tensor(y, "y");
  TORCH_CHECK(kind == kRR || kind == kSR || kind == kUD, "perturb_: unknown kind ", kind);
  TORCH_CHECK(t >= 1, "perturb_: t must be >= 1");
  if (kind == kSR && t >= significand_bits(y.scalar_type())) return;  // already on the grid
  const int64_t n = y.numel();
  const uint64_t k = static_cast<uint64_t>(key);
  const int bits = static_cast<int>(t);
  switch (y.scalar_type()) {
    case at::kDouble: perturb_loop(y.data_ptr<double>(), n, kind, bits, k); break;
    case at::kFloat: perturb_loop(y.data_ptr<float>(), n, kind, bits, k); break;
    case at::kHalf: perturb_loop(y.data_ptr<c10::Half>(), n, kind, bits, k); break;
    case at::kBFloat16: perturb_loop(y.data_ptr<c10::BFloat16>(), n, kind, bits, k); break;
    default: TORCH_CHECK(false, "perturb_: unsupported dtype ", y.scalar_type());
  }
}

template <typename W>
at::Tensor from_wide_typed(const at::Tensor& wide, at::ScalarType dtype, int64_t kind, int t,
                           uint64_t key) {
  at::Tensor out = at::empty(wide.sizes(), wide.options().dtype(dtype));
  const W* src = wide.data_ptr<W>();
  const int64_t n = wide.numel();
  switch (dtype) {
    case at::kFloat: from_wide_loop(src, out.data_ptr<float>(), n, kind, t, key); break;
    case at::kHalf: from_wide_loop(src, out.data_ptr<c10::Half>(), n, kind, t, key); break;
    case at::kBFloat16: from_wide_loop(src, out.data_ptr<c10::BFloat16>(), n, kind, t, key); break;
    default: TORCH_CHECK(false, "round_from_wide: unsupported target dtype ", dtype);
  }
  return out;
}

// rr (kind 0) or sr (kind 1) of an exact wider-type result into dtype, at t bits.
at::Tensor round_from_wide(const at::Tensor& wide, at::ScalarType dtype, int64_t kind, int64_t t,
                           int64_t key) {
  check_tensor(wide, "wide");
  TORCH_CHECK(kind == kRR || kind == kSR, "round_from_wide: kind must be rr (0) or sr (1)");
  const uint64_t k = static_cast<uint64_t>(key);
  if (wide.scalar_type() == at::kDouble) {
    return from_wide_typed<double>(wide, dtype, kind, static_cast<int>(t), k);
  }
  TORCH_CHECK(wide.scalar_type() == at::kFloat, "round_from_wide: wide must be fp64 or fp32");
  TORCH_CHECK(dtype != at::kFloat, "round_from_wide: fp32 is not narrower than fp32");
  return from_wide_typed<float>(wide, dtype, kind, static_cast<int>(t), k);
}

// The raw words of a stream, for tests against the numpy implementation.
at::Tensor stream_words(int64_t key, int64_t n) {
  at::Tensor out = at::empty({n}, at::TensorOptions().dtype(at::kLong));
  auto* data = reinterpret_cast<uint64_t*>(out.data_ptr<int64_t>());
  for (int64_t i = 0; i < n; ++i) data[i] = word(static_cast<uint64_t>(key), i);
  return out;
}

}  // namespace

PYBIND11_MODULE(TORCH_EXTENSION_NAME, m) {
  m.def("perturb_", &perturb_, "rr / sr / ud of a contiguous CPU tensor, in place");
  m.def("round_from_wide", &round_from_wide, "rr / sr of a wider-type result into a dtype");
  m.def("stream_words", &stream_words, "words of a SplitMix64 stream (tests)");
}
