// tcc's shim of the ap_int.h subset the generated sparse designs use: ap_int<N> and ap_uint<N>
// for N <= 64 as two's-complement values that wrap to N bits on every assignment, converting
// implicitly to and from native integers (as the vendor types do).  Used only when the vendor
// headers are not on the include path (esda_modules.hpp chooses).
#pragma once
#include <cstdint>
#include <type_traits>

template <int N, bool SIGNED>
class ap_int_shim {
  static_assert(N >= 1 && N <= 64, "the shim supports 1..64 bits");

 public:
  constexpr ap_int_shim() : v_(0) {}
  constexpr ap_int_shim(int64_t x) : v_(storage(wrap(x))) {}  // NOLINT: implicit, as the vendor type
  constexpr operator int64_t() const { return int64_t(v_); }
  ap_int_shim& operator=(int64_t x) { v_ = storage(wrap(x)); return *this; }

 private:
  static constexpr int64_t wrap(int64_t x) {
    if (N == 64) return x;
    const uint64_t mask = (uint64_t(1) << N) - 1, u = uint64_t(x) & mask;
    if (!SIGNED) return int64_t(u);
    const uint64_t sign = uint64_t(1) << (N - 1);
    return int64_t((u ^ sign) - sign);
  }
  // the narrowest native integer holding N bits, so arrays take the bytes of their width (a weight
  // ROM of int8 values one byte per weight, as the ROM files hold them)
  typedef typename std::conditional<
      (N <= 8), typename std::conditional<SIGNED, int8_t, uint8_t>::type,
      typename std::conditional<
          (N <= 16), typename std::conditional<SIGNED, int16_t, uint16_t>::type,
          typename std::conditional<(N <= 32), typename std::conditional<SIGNED, int32_t, uint32_t>::type,
                                    int64_t>::type>::type>::type storage;
  storage v_;
};

template <int N>
using ap_int = ap_int_shim<N, true>;
template <int N>
using ap_uint = ap_int_shim<N, false>;
