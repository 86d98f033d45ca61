// esda_modules.hpp: the sparse dataflow module library as streaming HLS templates (tcc backends/sparse).
//
// One template per module kind; the generated top.cpp instantiates one per layer with its shapes,
// kernel, stride and parallelism, declares its ROMs, line buffers and FIFOs (sized by the design
// search), and connects the modules with hls::stream FIFOs under #pragma HLS DATAFLOW.
//
// A stream carries tokens in raster order: one active site (row, column, end-of-frame flag) with
// its C int8 features.  Windowed modules keep a line buffer of the last ROWS input rows of
// active-site features plus an occupancy map (which sites of those rows are active) and emit an
// output row once an input token past its window (or the end of frame) arrives, so memory is
// ROWS x W x C whatever the frame height, and compute follows the active sites.  Channel loops
// run P lanes per beat (PIPELINE II=1 over the C/P beats, the P lanes unrolled).
//
// Vendor headers (hls_stream.h, ap_int.h) are used when they are on the include path (Vitis HLS
// C-simulation, synthesis, co-simulation); otherwise tcc's shim (hls_shim/) provides the subset
// used here, with bounded blocking FIFOs and one thread per module, so `g++` runs the design as it
// streams in hardware: FIFOs hold at most their declared depth.
//
// Requantization follows tcc.ir.numerics exactly: (x - in_zp) << pre_shift, times a Q31
// multiplier, one rounding right shift (mode per layer), plus the zero point, clamped.
#pragma once
#include <algorithm>
#include <cstdint>
#ifndef __SYNTHESIS__
#include <cstdio>  // load_rom: C-simulation reads the weight ROM files
#include <cstdlib>
#include <string>
#include <vector>
#endif

#if defined(__SYNTHESIS__) || (defined(__has_include) && __has_include(<hls_stream.h>) && !defined(TCC_HLS_SHIM))
#include <ap_int.h>
#include <hls_stream.h>
#define ESDA_VENDOR 1
#define ESDA_SET_DEPTH(stream, depth)
#define ESDA_DATAFLOW_BEGIN
#define ESDA_TASK(...) __VA_ARGS__;
#define ESDA_DATAFLOW_END
#else
#include "hls_shim/ap_int.h"
#include "hls_shim/hls_stream.h"
#define ESDA_SET_DEPTH(stream, depth) (stream).set_depth(depth)
#define ESDA_DATAFLOW_BEGIN hls::tasks esda_tasks_;
#define ESDA_TASK(...) esda_tasks_.run([&] { __VA_ARGS__; });
#define ESDA_DATAFLOW_END esda_tasks_.join();
#endif

namespace esda {

typedef ap_int<8> feat_t;
typedef ap_int<8> weight_t;

template <int C>
struct Tok {
  ap_uint<16> y, x;
  bool eof;
  feat_t f[C];
};

template <int C>
using Stream = hls::stream<Tok<C> >;

enum Rounding { HALF_EVEN, HALF_UP, HALF_AWAY, FLOOR };

struct Requant {
  const int32_t* mult; const int32_t* shift; int n;  // n == 1: per tensor
  int32_t zp, qmin, qmax; int pre_shift; Rounding mode;
  const int32_t* in_zp; int n_in_zp;
};

// round(x / 2**s) in the mode, exactly (tcc.ir.numerics.rounding_right_shift)
inline int64_t round_shift(int64_t x, int s, Rounding mode) {
  if (s <= 0) return x;
  __int128 den = (__int128)1 << s, q = x >> s, rem = (__int128)x - q * den, half = den / 2;
  bool above = rem > half, tie = rem == half, inc = false;
  if (mode == HALF_UP) inc = above || tie;
  else if (mode == HALF_AWAY) inc = above || (tie && x >= 0);
  else if (mode == HALF_EVEN) inc = above || (tie && (q & 1));
  return (int64_t)(q + (inc ? 1 : 0));
}

// round(num / den), den > 0 (tcc.ir.numerics.rounding_divide)
inline int64_t round_divide(int64_t num, int64_t den, Rounding mode) {
  int64_t q = num / den, r = num % den;
  if (r < 0) { q -= 1; r += den; }
  if (mode == FLOOR) return q;
  __int128 twice = (__int128)2 * r;
  bool above = twice > den, tie = twice == den, inc;
  if (mode == HALF_UP) inc = above || tie;
  else if (mode == HALF_AWAY) inc = above || (tie && num >= 0);
  else inc = above || (tie && (q & 1));
  return q + (inc ? 1 : 0);
}

inline int64_t requant(int64_t v, const Requant& r, int c) {
  v -= r.in_zp[r.n_in_zp > 1 ? c : 0];
  v *= (int64_t)1 << r.pre_shift;
  int k = r.n > 1 ? c : 0;
  int64_t q = round_shift(v * (int64_t)r.mult[k], std::min<int>(r.shift[k], 63), r.mode) + r.zp;
  return std::max<int64_t>(r.qmin, std::min<int64_t>(r.qmax, q));
}

// Where weight (m, c) of a beat-major ROM ([COUT/PO][CIN/PI][PO][PI], hls.beat_major) starts; the
// K x K taps follow it.
template <int CIN, int PI, int PO>
inline int beat_major_index(int m, int c) {
  return (((m / PO) * (CIN / PI) + c / PI) * PO + m % PO) * PI + c % PI;
}

template <int C>
Tok<C> site(int y, int x) {
  Tok<C> t;
  t.y = y; t.x = x; t.eof = false;
  for (int c = 0; c < C; ++c) t.f[c] = 0;
  return t;
}

template <int C>
void end_frame(Stream<C>& out) { Tok<C> t = site<C>(0, 0); t.eof = true; out.write(t); }

// The line buffer of a windowed module: the last ROWS input rows of active-site features (row r in
// slot r % ROWS) and the occupancy map of those rows.  at(): -2 outside the map (padding), -1 an
// inactive site (it holds the background), else the slot row of an active site.
template <int C, int H, int W, int ROWS>
struct LineBuffer {
  feat_t (&f)[ROWS][W][C];
  bool (&occ)[ROWS][W];
  int row_of[ROWS];
  LineBuffer(feat_t (&f_)[ROWS][W][C], bool (&occ_)[ROWS][W]) : f(f_), occ(occ_) {
    for (int r = 0; r < ROWS; ++r) row_of[r] = -1;
  }
  int at(int y, int x) const {
    if (y < 0 || x < 0 || y >= H || x >= W) return -2;
    int slot = y % ROWS;
    return (row_of[slot] == y && occ[slot][x]) ? slot : -1;
  }
  void store(const Tok<C>& t) {
    int y = t.y, x = t.x, slot = y % ROWS;
    if (row_of[slot] != y) {  // a new row takes the slot of the row ROWS above: clear its occupancy
      for (int i = 0; i < W; ++i) occ[slot][i] = false;
      row_of[slot] = y;
    }
    occ[slot][x] = true;
    for (int c = 0; c < C; ++c) f[slot][x][c] = t.f[c];
  }
  int feature(int slot, int x, int c, const int32_t* bg) const { return slot >= 0 ? (int)f[slot][x][c] : bg[c]; }
};

// Whether output site (oy, ox) is active: submanifold: any input of its S x S cell; exact: any
// input in its window, or its window reaches the padding when PAD_ACTIVE (background != zp).
template <int C, int H, int W, int ROWS, int K, int S, int PAD, bool SUBMANIFOLD, bool PAD_ACTIVE>
bool site_active(const LineBuffer<C, H, W, ROWS>& lb, int oy, int ox) {
  if (SUBMANIFOLD) {
    for (int dy = 0; dy < S; ++dy)
      for (int dx = 0; dx < S; ++dx)
        if (lb.at(oy * S + dy, ox * S + dx) >= 0) return true;
    return false;
  }
  for (int ky = 0; ky < K; ++ky)
    for (int kx = 0; kx < K; ++kx) {
      int i = lb.at(oy * S - PAD + ky, ox * S - PAD + kx);
      if (i >= 0 || (PAD_ACTIVE && i == -2)) return true;
    }
  return false;
}

// The streaming skeleton of every windowed module: store each token in the line buffer; before a
// token of row r is stored, every output row whose window (and submanifold cell) ends above r is
// complete: emit its active sites in raster order (compute(lb, oy, ox, token)).  At the end of the
// frame the remaining rows follow.
template <int CIN, int COUT, int H, int W, int HO, int WO, int ROWS, int K, int S, int PAD, bool SUBMANIFOLD,
          bool PAD_ACTIVE, typename Compute>
void window_stream(Stream<CIN>& in, Stream<COUT>& out, LineBuffer<CIN, H, W, ROWS>& lb, Compute compute) {
  const int last = std::max(K - 1 - PAD, S - 1);  // output row oy needs input rows up to oy * S + last
  int next_row = 0;
  auto emit_rows_before = [&](int input_row) {
    for (; next_row < HO && next_row * S + last < input_row; ++next_row)
      for (int ox = 0; ox < WO; ++ox) {
        if (!site_active<CIN, H, W, ROWS, K, S, PAD, SUBMANIFOLD, PAD_ACTIVE>(lb, next_row, ox)) continue;
        Tok<COUT> t = site<COUT>(next_row, ox);
        compute(lb, next_row, ox, t);
        out.write(t);
      }
  };
  for (Tok<CIN> t = in.read(); !t.eof; t = in.read()) {
    emit_rows_before((int)t.y);
    lb.store(t);
  }
  emit_rows_before(H + last + 1);
  end_frame(out);
}

// conv (group 1, K x K), strided pointwise (K = 1) and depthwise (DW) modules: accumulate over the
// window (inactive neighbours hold the background, padding the zero point), add the bias,
// requantize (+ReLU through qmin).  Weights are stored beat-major for conv/pointwise
// ([COUT/PO][CIN/PI][PO][PI][K][K]: one ROM word per beat), [C][K][K] for depthwise.
template <int CIN, int COUT, int H, int W, int HO, int WO, int ROWS, int K, int S, int PAD, bool DW, bool SUBMANIFOLD,
          bool PAD_ACTIVE, int PI, int PO>
void conv_module(Stream<CIN>& in, Stream<COUT>& out, feat_t (&lb_f)[ROWS][W][CIN], bool (&lb_occ)[ROWS][W],
                 const weight_t* w, const int32_t* w_zp, int n_wzp, const int32_t* bias, int32_t in_zp,
                 const int32_t* bg_in, const Requant& rq) {
  LineBuffer<CIN, H, W, ROWS> lb(lb_f, lb_occ);
  auto compute = [&](const LineBuffer<CIN, H, W, ROWS>& b, int oy, int ox, Tok<COUT>& t) {
    for (int mb = 0; mb < COUT; mb += PO) {
#pragma HLS PIPELINE II = 1
      for (int mo = 0; mo < PO; ++mo) {
#pragma HLS UNROLL
        int m = mb + mo;
        int64_t acc = bias ? bias[m] : 0;
        int32_t wz = w_zp[n_wzp > 1 ? m : 0];
        for (int ky = 0; ky < K; ++ky)
          for (int kx = 0; kx < K; ++kx) {
            int iy = oy * S - PAD + ky, ix = ox * S - PAD + kx;
            int slot = b.at(iy, ix);
            if (slot == -2) continue;  // padding: the zero point, centred 0
            for (int c = DW ? m : 0; c < (DW ? m + 1 : CIN); ++c) {
              int64_t v = b.feature(slot, ix, c, bg_in) - in_zp;
              int wi = ((DW ? m : beat_major_index<CIN, PI, PO>(m, c)) * K + ky) * K + kx;
              acc += v * ((int)w[wi] - wz);
            }
          }
        t.f[m] = (int)requant(acc, rq, m);
      }
    }
  };
  window_stream<CIN, COUT, H, W, HO, WO, ROWS, K, S, PAD, SUBMANIFOLD, PAD_ACTIVE>(in, out, lb, compute);
}

// pointwise (1 x 1, stride 1): one output token per input token, no line buffer
template <int CIN, int COUT, int PI, int PO>
void pointwise_module(Stream<CIN>& in, Stream<COUT>& out, const weight_t* w, const int32_t* w_zp, int n_wzp,
                      const int32_t* bias, int32_t in_zp, const Requant& rq) {
  for (Tok<CIN> t = in.read(); !t.eof; t = in.read()) {
    Tok<COUT> o = site<COUT>(t.y, t.x);
    for (int mb = 0; mb < COUT; mb += PO) {
#pragma HLS PIPELINE II = 1
      for (int mo = 0; mo < PO; ++mo) {
#pragma HLS UNROLL
        int m = mb + mo;
        int64_t acc = bias ? bias[m] : 0;
        int32_t wz = w_zp[n_wzp > 1 ? m : 0];
        for (int c = 0; c < CIN; ++c) {
          acc += (int64_t)((int)t.f[c] - in_zp) * ((int)w[beat_major_index<CIN, PI, PO>(m, c)] - wz);
        }
        o.f[m] = (int)requant(acc, rq, m);
      }
    }
    out.write(o);
  }
  end_frame(out);
}

// max over each K x K window (inactive sites hold the background, padding never wins)
template <int C, int H, int W, int HO, int WO, int ROWS, int K, int S, int PAD, bool SUBMANIFOLD, int P>
void maxpool_module(Stream<C>& in, Stream<C>& out, feat_t (&lb_f)[ROWS][W][C], bool (&lb_occ)[ROWS][W],
                    const int32_t* bg) {
  LineBuffer<C, H, W, ROWS> lb(lb_f, lb_occ);
  auto compute = [&](const LineBuffer<C, H, W, ROWS>& b, int oy, int ox, Tok<C>& t) {
    for (int cb = 0; cb < C; cb += P) {
#pragma HLS PIPELINE II = 1
      for (int c = cb; c < cb + P; ++c) {
#pragma HLS UNROLL
        int best = -1000;
        for (int ky = 0; ky < K; ++ky)
          for (int kx = 0; kx < K; ++kx) {
            int ix = ox * S - PAD + kx, slot = b.at(oy * S - PAD + ky, ix);
            if (slot != -2) best = std::max(best, b.feature(slot, ix, c, bg));
          }
        t.f[c] = best;
      }
    }
  };
  window_stream<C, C, H, W, HO, WO, ROWS, K, S, PAD, SUBMANIFOLD, false>(in, out, lb, compute);
}

// average over each K x K window (inactive sites hold the background), divided by the window's
// taps inside the map, onto the output scale with qavg_pool's one exact rounding
template <int C, int H, int W, int HO, int WO, int ROWS, int K, int S, int PAD, bool SUBMANIFOLD, int P>
void avgpool_module(Stream<C>& in, Stream<C>& out, feat_t (&lb_f)[ROWS][W][C], bool (&lb_occ)[ROWS][W],
                    const int32_t* bg, int32_t in_zp, int64_t mult, int shift, int32_t zp, int32_t qmin,
                    int32_t qmax) {
  LineBuffer<C, H, W, ROWS> lb(lb_f, lb_occ);
  auto compute = [&](const LineBuffer<C, H, W, ROWS>& b, int oy, int ox, Tok<C>& t) {
    for (int cb = 0; cb < C; cb += P) {
#pragma HLS PIPELINE II = 1
      for (int c = cb; c < cb + P; ++c) {
#pragma HLS UNROLL
        int64_t total = 0;
        int n = 0;
        for (int ky = 0; ky < K; ++ky)
          for (int kx = 0; kx < K; ++kx) {
            int ix = ox * S - PAD + kx, slot = b.at(oy * S - PAD + ky, ix);
            if (slot == -2) continue;  // padding is not counted
            total += b.feature(slot, ix, c, bg) - in_zp;
            ++n;
          }
        int64_t mean = round_divide(total * mult, (int64_t)n << shift, HALF_EVEN) + zp;
        t.f[c] = (int)std::max<int64_t>(qmin, std::min<int64_t>(qmax, mean));
      }
    }
  };
  window_stream<C, C, H, W, HO, WO, ROWS, K, S, PAD, SUBMANIFOLD, false>(in, out, lb, compute);
}

// residual add: merge two raster-ordered streams (a missing token holds that branch's background),
// rescale each branch to int32, add, requantize
template <int C, int W, int P>
void add_module(Stream<C>& a, Stream<C>& b, Stream<C>& out, const int32_t* bg_a, const int32_t* bg_b,
                const Requant& ra, const Requant& rb, const Requant& ro) {
  Tok<C> ta = a.read(), tb = b.read();
  while (!ta.eof || !tb.eof) {
    int pa = ta.eof ? 1 << 30 : (int)ta.y * W + (int)ta.x, pb = tb.eof ? 1 << 30 : (int)tb.y * W + (int)tb.x;
    int p = std::min(pa, pb);
    Tok<C> t = site<C>(p / W, p % W);
    for (int cb = 0; cb < C; cb += P) {
#pragma HLS PIPELINE II = 1
      for (int c = cb; c < cb + P; ++c) {
#pragma HLS UNROLL
        int64_t va = requant(pa == p ? (int)ta.f[c] : bg_a[c], ra, c);
        int64_t vb = requant(pb == p ? (int)tb.f[c] : bg_b[c], rb, c);
        t.f[c] = (int)requant(va + vb, ro, c);
      }
    }
    out.write(t);
    if (pa == p) ta = a.read();
    if (pb == p) tb = b.read();
  }
  end_frame(out);
}

// One branch of a concat: its stream, the token at its head, the background that a missing token
// holds, and its rescale (nullptr: none).
template <int C>
struct Branch {
  Stream<C>& s;
  const int32_t* bg;
  const Requant* rq;
  Tok<C> t;
  Branch(Stream<C>& s_, const int32_t* bg_, const Requant* rq_) : s(s_), bg(bg_), rq(rq_), t(site<C>(0, 0)) {}
  template <int W>
  int position() const { return t.eof ? 1 << 30 : (int)t.y * W + (int)t.x; }
};

inline void read_heads() {}
template <int C, typename... Rest>
void read_heads(Branch<C>& b, Rest&... rest) {
  b.t = b.s.read();
  read_heads(rest...);
}

// The least raster position at the heads of the branches (recursion over the parameter pack:
// C++14, as Vitis HLS compiles it).
template <int W>
int head_position() { return 1 << 30; }
template <int W, int C, typename... Rest>
int head_position(const Branch<C>& b, const Rest&... rest) {
  return std::min(b.template position<W>(), head_position<W>(rest...));
}

// Channels [OFF, OFF + C) of the output token at raster position p from each branch in turn
// (its token when it is at p, else its background; rescaled when it has a Requant); a branch
// whose token was used reads its next one.
template <int W, int COUT, int OFF, int P>
void put_branches(Tok<COUT>&, int) {}
template <int W, int COUT, int OFF, int P, int C, typename... Rest>
void put_branches(Tok<COUT>& o, int p, Branch<C>& b, Rest&... rest) {
  bool here = b.template position<W>() == p;
  for (int c = 0; c < C; ++c) {
#pragma HLS UNROLL factor = P
    int v = here ? (int)b.t.f[c] : b.bg[c];
    o.f[OFF + c] = (int)(b.rq ? requant(v, *b.rq, c) : v);
  }
  if (here) b.t = b.s.read();
  put_branches<W, COUT, OFF + C, P>(o, p, rest...);
}

// channel concat of N branches: merge the raster-ordered streams (a missing token holds that
// branch's background), rescale a branch when it has a Requant, join the vectors in branch order
template <int COUT, int W, int P, typename... Branches>
void concat_module(Stream<COUT>& out, Branches... branches) {
  read_heads(branches...);
  for (int p = head_position<W>(branches...); p != 1 << 30; p = head_position<W>(branches...)) {
    Tok<COUT> t = site<COUT>(p / W, p % W);
    put_branches<W, COUT, 0, P>(t, p, branches...);
    out.write(t);
  }
  end_frame(out);
}

// global average pool over all H*W sites (inactive ones hold the background): one exact rounding
template <int C, int H, int W, int P>
void gpool_module(Stream<C>& in, Stream<C>& out, ap_int<32> (&total)[C], const int32_t* bg, int32_t in_zp,
                  int64_t mult, int shift, int32_t zp, int32_t qmin, int32_t qmax) {
  for (int c = 0; c < C; ++c) total[c] = 0;
  int n = 0;
  for (Tok<C> t = in.read(); !t.eof; t = in.read(), ++n)
    for (int cb = 0; cb < C; cb += P) {
#pragma HLS PIPELINE II = 1
      for (int c = cb; c < cb + P; ++c) total[c] = (int64_t)total[c] + ((int)t.f[c] - in_zp);
    }
  Tok<C> o = site<C>(0, 0);
  for (int c = 0; c < C; ++c) {
#pragma HLS UNROLL factor = P
    int64_t sum = (int64_t)total[c] + (int64_t)(H * W - n) * (bg[c] - in_zp);
    int64_t mean = round_divide(sum * mult, (int64_t)(H * W) << shift, HALF_EVEN) + zp;
    o.f[c] = (int)std::max<int64_t>(qmin, std::min<int64_t>(qmax, mean));
  }
  out.write(o);
  end_frame(out);
}

// fully connected layer on the global pool's one site, or on a C x H x W map flattened in C, H, W
// order: the map (inactive sites holding the background) is densified into ``x`` first
template <int C, int H, int W, int COUT, int PI, int PO>
void fc_module(Stream<C>& in, Stream<COUT>& out, feat_t* x, const weight_t* w, const int32_t* w_zp, int n_wzp,
               const int32_t* bias, int32_t in_zp, const int32_t* bg, const Requant& rq) {
  for (int c = 0; c < C; ++c)
    for (int s = 0; s < H * W; ++s) x[c * H * W + s] = bg[c];
  for (Tok<C> t = in.read(); !t.eof; t = in.read())
    for (int c = 0; c < C; ++c) x[c * H * W + (int)t.y * W + (int)t.x] = t.f[c];
  Tok<COUT> o = site<COUT>(0, 0);
  for (int m = 0; m < COUT; ++m) {
#pragma HLS UNROLL factor = PO
    int64_t acc = bias ? bias[m] : 0;
    for (int i = 0; i < C * H * W; ++i) {
#pragma HLS PIPELINE II = 1
      acc += (int64_t)((int)x[i] - in_zp) * ((int)w[m * C * H * W + i] - w_zp[n_wzp > 1 ? m : 0]);
    }
    o.f[m] = (int)requant(acc, rq, m);
  }
  out.write(o);
  end_frame(out);
}

// stream duplication for a stream read by two modules (e.g. a residual's identity branch)
template <int C>
void dup_module(Stream<C>& in, Stream<C>& a, Stream<C>& b) {
  for (;;) {
#pragma HLS PIPELINE II = 1
    Tok<C> t = in.read();
    a.write(t);
    b.write(t);
    if (t.eof) break;
  }
}

#ifndef __SYNTHESIS__
// C-simulation: fill a ROM from its file in ESDA_ROM_DIR (the integers of the synthesis
// initializer, comma separated); a missing file or a wrong count stops the run with a message.
#ifndef ESDA_ROM_DIR
#define ESDA_ROM_DIR "weights/"
#endif
template <typename T>
void load_rom(T* rom, long count, const char* name) {
  const std::string path = std::string(ESDA_ROM_DIR) + name;
  std::FILE* f = std::fopen(path.c_str(), "rb");
  if (!f) {
    std::fprintf(stderr, "error: cannot open the ROM file %s (run from the folder tcc hls wrote)\n", path.c_str());
    std::exit(2);
  }
  std::vector<char> buf(1 << 16);
  long n = 0, value = 0;
  bool digits = false, negative = false;
  for (std::size_t got; (got = std::fread(buf.data(), 1, buf.size(), f)) > 0;) {
    for (std::size_t i = 0; i < got; ++i) {
      char ch = buf[i];
      if (ch >= '0' && ch <= '9') {
        value = value * 10 + (ch - '0');
        digits = true;
      } else if (ch == '-' && !digits) {
        negative = true;
      } else if (digits) {
        if (n < count) rom[n] = negative ? -value : value;
        ++n, value = 0, digits = negative = false;
      }
    }
  }
  if (digits) {
    if (n < count) rom[n] = negative ? -value : value;
    ++n;
  }
  std::fclose(f);
  if (n != count) {
    std::fprintf(stderr, "error: the ROM file %s holds %ld values, the ROM has %ld\n", path.c_str(), n, count);
    std::exit(2);
  }
}
#endif

}  // namespace esda
