// Winograd F(m x m, 3x3) convolutions, m = 4 (default) or 2: 3x3, stride 1,
// 'same' zero padding, float32 channels-last, C_in and C_out multiples of 8.
//
//   KnsdeWinogradConv(x, kernel; tile=m)    -> y  = conv2d(x, kernel, 1, "SAME")        (B, H, W, C_out)
//   KnsdeWinogradFilterGrad(x, dy; tile=m)  -> dk = Conv2DBackpropFilter(x, 3x3, dy)    (3, 3, C_in, C_out)
//
// Each m x m output tile y = A^T [U (.) V] A with V = B^T d B the tile's
// a x a input patch d transformed (a = m + 2) and U = G g G^T the transformed
// 3x3 kernel g: a^2 products per output tile and pair of channels where a
// direct convolution needs 9 m^2 (F(2x2): 16 for 36, F(4x4): 36 for 144, 4x
// fewer). The matrices are Lavin & Gray's (2016), interpolation points
// 0, +-1 (m = 2) and 0, +-1, +-2 (m = 4); F(4x4)'s larger coefficients cost
// about one more decimal digit of float32 rounding (relative error ~1e-6
// against ~1e-7 for F(2x2)).
// Per tile position xi of the a x a transform the channel sums are a matrix
// product M_xi (tiles x C_out) = V_xi (tiles x C_in) U_xi (C_in x C_out),
// done in L2-sized chunks of tiles by a register-blocked kernel.
// The filter gradient is the adjoint: dU_xi = V_xi^T dM_xi with
// dM = A dY A^T, then dg = G^T dU G, summed over chunks in a fixed order
// (results do not depend on the thread count).
// keras_nsde/backend/tensorflow/kernels/conv_ops.py holds the TensorFlow twins and gradients.

#include <algorithm>
#include <cstring>
#include <memory>
#include <vector>

#include "tensorflow/core/framework/op.h"
#include "tensorflow/core/framework/op_kernel.h"
#include "tensorflow/core/framework/shape_inference.h"
#include "knsde_common.h"

namespace {

using namespace knsde;  // TensorFlow's kernel names, InvalidArgument, Status (knsde_common.h)

REGISTER_OP("KnsdeWinogradConv")
    .Input("x: float")
    .Input("kernel: float")
    .Output("y: float")
    .Attr("tile: int = 4")
    .SetShapeFn([](InferenceContext* c) {
      ShapeHandle x, kernel, y;
      TF_RETURN_IF_ERROR(c->WithRank(c->input(0), 4, &x));
      TF_RETURN_IF_ERROR(c->WithRank(c->input(1), 4, &kernel));
      TF_RETURN_IF_ERROR(c->ReplaceDim(x, 3, c->Dim(kernel, 3), &y));
      c->set_output(0, y);
      return knsde::Ok();
    });

REGISTER_OP("KnsdeWinogradFilterGrad")
    .Input("x: float")
    .Input("dy: float")
    .Output("dkernel: float")
    .Attr("tile: int = 4")
    .SetShapeFn([](InferenceContext* c) {
      ShapeHandle x, dy;
      TF_RETURN_IF_ERROR(c->WithRank(c->input(0), 4, &x));
      TF_RETURN_IF_ERROR(c->WithRank(c->input(1), 4, &dy));
      c->set_output(0, c->MakeShape({3, 3, c->Dim(x, 3), c->Dim(dy, 3)}));
      return knsde::Ok();
    });

typedef float v8 __attribute__((vector_size(32)));

// The matrix products' vectors: 16 lanes where the library is built for
// AVX-512 (build.py adds -mavx512f on CPUs that have it; a 512-bit FMA does
// twice the work of a 256-bit one on cores with full-width units), else 8.
// The transforms take wide vectors where the channel count allows
// (C_in, C_out need only be multiples of 8).
#ifdef __AVX512F__
typedef float vw __attribute__((vector_size(64)));
#else
typedef v8 vw;
#endif
constexpr int kWide = sizeof(vw) / sizeof(float);

template <typename V>
inline V LoadAs(const float* p) {
  V v;
  std::memcpy(&v, p, sizeof(v));
  return v;
}

template <typename V>
inline void StoreAs(float* p, V v) { std::memcpy(p, &v, sizeof(v)); }

// Tiles per chunk, a multiple of the products' 6-row block (fastest of 6..192 for F(2x2)
// and of 6..72 for F(4x4) at 64 channels, in the convolution and the filter gradient).
constexpr int64_t kChunkTiles = 18;

// The 1-D transforms of F(m, 3) on vectors of channels, d[i * stride] -> out[i * out_stride]:
// Input (B^T d, a -> a values), Output (A^T m, a -> m) and OutputGradient (A dy, m -> a),
// and the kernel transform's G (a x 3).
template <int m>
struct Transforms;

template <>
struct Transforms<2> {
  static constexpr int a = 4;
  static constexpr float G[4][3] = {{1, 0, 0}, {0.5f, 0.5f, 0.5f}, {0.5f, -0.5f, 0.5f}, {0, 0, 1}};

  // B^T = [[1, 0, -1, 0], [0, 1, 1, 0], [0, -1, 1, 0], [0, 1, 0, -1]]
  template <typename V>
  static void Input(const V* d, int stride, V* out, int out_stride) {
    const V d0 = d[0], d1 = d[stride], d2 = d[2 * stride], d3 = d[3 * stride];
    out[0] = d0 - d2;
    out[out_stride] = d1 + d2;
    out[2 * out_stride] = d2 - d1;
    out[3 * out_stride] = d1 - d3;
  }

  // A^T = [[1, 1, 1, 0], [0, 1, -1, -1]]
  template <typename V>
  static void Output(const V* v, int stride, V* out, int out_stride) {
    const V v0 = v[0], v1 = v[stride], v2 = v[2 * stride], v3 = v[3 * stride];
    out[0] = v0 + v1 + v2;
    out[out_stride] = v1 - v2 - v3;
  }

  template <typename V>
  static void OutputGradient(const V* d, int stride, V* out, int out_stride) {
    const V d0 = d[0], d1 = d[stride];
    out[0] = d0;
    out[out_stride] = d0 + d1;
    out[2 * out_stride] = d0 - d1;
    out[3 * out_stride] = -d1;
  }
};

template <>
struct Transforms<4> {
  static constexpr int a = 6;
  static constexpr float G[6][3] = {{0.25f, 0, 0},
                                    {-1.0f / 6, -1.0f / 6, -1.0f / 6},
                                    {-1.0f / 6, 1.0f / 6, -1.0f / 6},
                                    {1.0f / 24, 1.0f / 12, 1.0f / 6},
                                    {1.0f / 24, -1.0f / 12, 1.0f / 6},
                                    {0, 0, 1}};

  // B^T = [[4, 0, -5, 0, 1, 0], [0, -4, -4, 1, 1, 0], [0, 4, -4, -1, 1, 0],
  //        [0, -2, -1, 2, 1, 0], [0, 2, -1, -2, 1, 0], [0, 4, 0, -5, 0, 1]]
  template <typename V>
  static void Input(const V* d, int stride, V* out, int out_stride) {
    const V d0 = d[0], d1 = d[stride], d2 = d[2 * stride], d3 = d[3 * stride], d4 = d[4 * stride],
             d5 = d[5 * stride];
    const V even4 = d4 - 4.0f * d2, odd4 = d3 - 4.0f * d1, even2 = d4 - d2, odd2 = 2.0f * (d3 - d1);
    out[0] = 4.0f * (d0 - d2) + even2;
    out[out_stride] = even4 + odd4;
    out[2 * out_stride] = even4 - odd4;
    out[3 * out_stride] = even2 + odd2;
    out[4 * out_stride] = even2 - odd2;
    out[5 * out_stride] = 4.0f * (d1 - d3) + (d5 - d3);
  }

  // A^T = [[1, 1, 1, 1, 1, 0], [0, 1, -1, 2, -2, 0], [0, 1, 1, 4, 4, 0], [0, 1, -1, 8, -8, 1]]
  template <typename V>
  static void Output(const V* v, int stride, V* out, int out_stride) {
    const V sum1 = v[stride] + v[2 * stride], diff1 = v[stride] - v[2 * stride];
    const V sum2 = v[3 * stride] + v[4 * stride], diff2 = v[3 * stride] - v[4 * stride];
    out[0] = v[0] + sum1 + sum2;
    out[out_stride] = diff1 + 2.0f * diff2;
    out[2 * out_stride] = sum1 + 4.0f * sum2;
    out[3 * out_stride] = diff1 + 8.0f * diff2 + v[5 * stride];
  }

  template <typename V>
  static void OutputGradient(const V* d, int stride, V* out, int out_stride) {
    const V d0 = d[0], d1 = d[stride], d2 = d[2 * stride], d3 = d[3 * stride];
    const V even = d0 + d2, odd = d1 + d3, even4 = d0 + 4.0f * d2, odd4 = 2.0f * d1 + 8.0f * d3;
    out[0] = d0;
    out[out_stride] = even + odd;
    out[2 * out_stride] = even - odd;
    out[3 * out_stride] = even4 + odd4;
    out[4 * out_stride] = even4 - odd4;
    out[5 * out_stride] = d3;
  }
};

struct Geometry {
  int64_t batch, height, width, c_in, c_out, m, tiles_y, tiles_x, tiles;

  Geometry(const Tensor& x, int64_t out_channels, int64_t tile)
      : batch(x.dim_size(0)), height(x.dim_size(1)), width(x.dim_size(2)), c_in(x.dim_size(3)),
        c_out(out_channels), m(tile), tiles_y((height + tile - 1) / tile), tiles_x((width + tile - 1) / tile),
        tiles(batch * tiles_y * tiles_x) {}

  int64_t chunks() const { return (tiles + kChunkTiles - 1) / kChunkTiles; }

  // First tile and tile count of chunk number `chunk`.
  int64_t ChunkStart(int64_t chunk) const { return chunk * kChunkTiles; }
  int64_t ChunkSize(int64_t chunk) const { return std::min(kChunkTiles, tiles - chunk * kChunkTiles); }

  // Image n and top-left output pixel (y0, x0) of tile number `tile`.
  struct Tile {
    int64_t n, y0, x0;
  };
  Tile TileAt(int64_t tile) const {
    return {tile / (tiles_y * tiles_x), m * ((tile / tiles_x) % tiles_y), m * (tile % tiles_x)};
  }

  bool Inside(int64_t y, int64_t x) const { return y >= 0 && y < height && x >= 0 && x < width; }

  // Index of pixel (n, y, x)'s first channel in a (B, H, W, channels) tensor.
  int64_t Pixel(int64_t n, int64_t y, int64_t x, int64_t channels) const { return ((n * height + y) * width + x) * channels; }
};

Status CheckChannels(int64_t channels, const char* name) {
  if (channels % 8 != 0 || channels == 0) {
    return InvalidArgument("KnsdeWinograd*: ", name, " channels must be a positive multiple of 8, got ", channels);
  }
  return knsde::Ok();
}



// acc (R rows x NV vectors of V's lanes) = sum_k a(r, k) b(k, :), a(r, k) = a[r * a_row + k * a_k].
// c = acc, or c += acc when accumulate.
template <typename V, int R, int NV>
void MicroKernel(const float* a, int64_t a_row, int64_t a_k, const float* b, int64_t b_row, int64_t K, float* c,
                 int64_t c_row, bool accumulate) {
  constexpr int L = sizeof(V) / sizeof(float);
  V acc[R][NV] = {};
  for (int64_t k = 0; k < K; ++k) {
    V bv[NV];
    for (int v = 0; v < NV; ++v) bv[v] = LoadAs<V>(b + k * b_row + L * v);
    for (int r = 0; r < R; ++r) {
      const float s = a[r * a_row + k * a_k];
      for (int v = 0; v < NV; ++v) acc[r][v] += s * bv[v];
    }
  }
  for (int r = 0; r < R; ++r) {
    for (int v = 0; v < NV; ++v) {
      float* p = c + r * c_row + L * v;
      StoreAs<V>(p, accumulate ? LoadAs<V>(p) + acc[r][v] : acc[r][v]);
    }
  }
}

// Columns in blocks of two wide vectors, then one wide vector, then 8 lanes (N is a multiple of 8).
template <int R>
void RowBlock(const float* a, int64_t a_row, int64_t a_k, const float* b, int64_t b_row, int64_t K, int64_t N,
              float* c, int64_t c_row, bool accumulate) {
  int64_t col = 0;
  for (; col + 2 * kWide <= N; col += 2 * kWide) {
    MicroKernel<vw, R, 2>(a, a_row, a_k, b + col, b_row, K, c + col, c_row, accumulate);
  }
  for (; col + kWide <= N; col += kWide) MicroKernel<vw, R, 1>(a, a_row, a_k, b + col, b_row, K, c + col, c_row, accumulate);
  for (; col < N; col += 8) MicroKernel<v8, R, 1>(a, a_row, a_k, b + col, b_row, K, c + col, c_row, accumulate);
}

// c (M x N) (+)= a (M x K, strides a_row, a_k) b (K x N, row stride b_row); N a multiple of 8.
void MatMul(const float* a, int64_t a_row, int64_t a_k, const float* b, int64_t b_row, int64_t M, int64_t K,
            int64_t N, float* c, int64_t c_row, bool accumulate) {
  int64_t row = 0;
  for (; row + 6 <= M; row += 6) RowBlock<6>(a + row * a_row, a_row, a_k, b, b_row, K, N, c + row * c_row, c_row, accumulate);
  const float* a_rest = a + row * a_row;
  float* c_rest = c + row * c_row;
  switch (M - row) {
    case 5: RowBlock<5>(a_rest, a_row, a_k, b, b_row, K, N, c_rest, c_row, accumulate); break;
    case 4: RowBlock<4>(a_rest, a_row, a_k, b, b_row, K, N, c_rest, c_row, accumulate); break;
    case 3: RowBlock<3>(a_rest, a_row, a_k, b, b_row, K, N, c_rest, c_row, accumulate); break;
    case 2: RowBlock<2>(a_rest, a_row, a_k, b, b_row, K, N, c_rest, c_row, accumulate); break;
    case 1: RowBlock<1>(a_rest, a_row, a_k, b, b_row, K, N, c_rest, c_row, accumulate); break;
    default: break;
  }
}

// Whether the a x a patch whose top-left pixel is (y, x) lies inside the image.
inline bool PatchInside(const Geometry& g, int64_t y, int64_t x, int a) {
  return y >= 0 && x >= 0 && y + a <= g.height && x + a <= g.width;
}

// d[side * i + j] = pixel (y + i, x + j) of image n, channels [c, c + lanes),
// zero outside the image. Interior patches skip the bounds checks.
template <typename V, int side>
inline void LoadPatch(const Geometry& g, const float* src, int64_t C, int64_t n, int64_t y, int64_t x, int64_t c, V* d) {
  if (PatchInside(g, y, x, side)) {
    const float* p = src + g.Pixel(n, y, x, C) + c;
    const int64_t row = g.width * C;
    for (int i = 0; i < side; ++i) {
      for (int j = 0; j < side; ++j) d[side * i + j] = LoadAs<V>(p + i * row + j * C);
    }
    return;
  }
  for (int i = 0; i < side; ++i) {
    for (int j = 0; j < side; ++j) d[side * i + j] = g.Inside(y + i, x + j) ? LoadAs<V>(src + g.Pixel(n, y + i, x + j, C) + c) : V{};
  }
}

// V[xi][t][c] for the chunk's tiles [t0, t0 + count): a^2 x count x C_in.
template <int m, typename V>
void TransformInputLanes(const Geometry& g, const float* x, int64_t t0, int64_t count, float* Vt) {
  using T = Transforms<m>;
  constexpr int a = T::a, L = sizeof(V) / sizeof(float);
  const int64_t C = g.c_in;
  for (int64_t t = 0; t < count; ++t) {
    const Geometry::Tile tile = g.TileAt(t0 + t);
    for (int64_t c = 0; c < C; c += L) {
      V d[a * a], rows[a * a], v[a * a];
      LoadPatch<V, a>(g, x, C, tile.n, tile.y0 - 1, tile.x0 - 1, c, d);  // the a x a patch around the m x m tile
      for (int j = 0; j < a; ++j) T::Input(d + j, a, rows + j, a);          // B^T d
      for (int i = 0; i < a; ++i) T::Input(rows + a * i, 1, v + a * i, 1);  // (B^T d) B
      for (int xi = 0; xi < a * a; ++xi) StoreAs<V>(Vt + (xi * count + t) * C + c, v[xi]);
    }
  }
}

// y tiles from M[xi][t][co]: A^T M A.
template <int m, typename V>
void TransformOutputLanes(const Geometry& g, const float* M, int64_t t0, int64_t count, float* y) {
  using T = Transforms<m>;
  constexpr int a = T::a, L = sizeof(V) / sizeof(float);
  const int64_t C = g.c_out, row = g.width * C;
  for (int64_t t = 0; t < count; ++t) {
    const Geometry::Tile tile = g.TileAt(t0 + t);
    const bool inside = PatchInside(g, tile.y0, tile.x0, m);
    for (int64_t c = 0; c < C; c += L) {
      V v[a * a], rows[m * a], out[m * m];
      for (int xi = 0; xi < a * a; ++xi) v[xi] = LoadAs<V>(M + (xi * count + t) * C + c);
      for (int j = 0; j < a; ++j) T::Output(v + j, a, rows + j, a);            // A^T M: m x a
      for (int i = 0; i < m; ++i) T::Output(rows + a * i, 1, out + m * i, 1);  // (A^T M) A: m x m
      if (inside) {
        float* p = y + g.Pixel(tile.n, tile.y0, tile.x0, C) + c;
        for (int i = 0; i < m; ++i) {
          for (int j = 0; j < m; ++j) StoreAs<V>(p + i * row + j * C, out[m * i + j]);
        }
        continue;
      }
      for (int i = 0; i < m; ++i) {
        for (int j = 0; j < m; ++j) {
          if (g.Inside(tile.y0 + i, tile.x0 + j)) StoreAs<V>(y + g.Pixel(tile.n, tile.y0 + i, tile.x0 + j, C) + c, out[m * i + j]);
        }
      }
    }
  }
}

// dM[xi][t][co] = (A dY A^T)[xi] for the chunk's dy tiles (zeros beyond the image).
template <int m, typename V>
void TransformOutputGradientLanes(const Geometry& g, const float* dy, int64_t t0, int64_t count, float* dM) {
  using T = Transforms<m>;
  constexpr int a = T::a, L = sizeof(V) / sizeof(float);
  const int64_t C = g.c_out;
  for (int64_t t = 0; t < count; ++t) {
    const Geometry::Tile tile = g.TileAt(t0 + t);
    for (int64_t c = 0; c < C; c += L) {
      V d[m * m], rows[a * m], v[a * a];
      LoadPatch<V, m>(g, dy, C, tile.n, tile.y0, tile.x0, c, d);
      for (int j = 0; j < m; ++j) T::OutputGradient(d + j, m, rows + j, m);          // A dY: a x m
      for (int i = 0; i < a; ++i) T::OutputGradient(rows + m * i, 1, v + a * i, 1);  // (A dY) A^T: a x a
      for (int xi = 0; xi < a * a; ++xi) StoreAs<V>(dM + (xi * count + t) * C + c, v[xi]);
    }
  }
}

// The transforms on wide vectors where the channel count is a multiple of their lanes, else on 8 lanes.
template <int m>
void TransformInput(const Geometry& g, const float* x, int64_t t0, int64_t count, float* Vt) {
  if (g.c_in % kWide == 0) return TransformInputLanes<m, vw>(g, x, t0, count, Vt);
  TransformInputLanes<m, v8>(g, x, t0, count, Vt);
}

template <int m>
void TransformOutput(const Geometry& g, const float* M, int64_t t0, int64_t count, float* y) {
  if (g.c_out % kWide == 0) return TransformOutputLanes<m, vw>(g, M, t0, count, y);
  TransformOutputLanes<m, v8>(g, M, t0, count, y);
}

template <int m>
void TransformOutputGradient(const Geometry& g, const float* dy, int64_t t0, int64_t count, float* dM) {
  if (g.c_out % kWide == 0) return TransformOutputGradientLanes<m, vw>(g, dy, t0, count, dM);
  TransformOutputGradientLanes<m, v8>(g, dy, t0, count, dM);
}

// U[xi][ci][co] = (G g G^T)[xi] for a (3, 3, C_in, C_out) kernel.
template <int m>
std::vector<float> TransformKernel(const float* kernel, int64_t c_in, int64_t c_out) {
  using T = Transforms<m>;
  constexpr int a = T::a;
  const int64_t block = c_in * c_out;
  std::vector<float> U(a * a * block, 0.0f);
  for (int i = 0; i < a; ++i) {
    for (int j = 0; j < a; ++j) {
      float* u = &U[(a * i + j) * block];
      for (int p = 0; p < 3; ++p) {
        for (int q = 0; q < 3; ++q) {
          const float w = T::G[i][p] * T::G[j][q];
          if (w == 0.0f) continue;
          const float* k = kernel + (3 * p + q) * block;
          for (int64_t e = 0; e < block; ++e) u[e] += w * k[e];
        }
      }
    }
  }
  return U;
}

// dk[p][q][e] = sum_ij G[i][p] G[j][q] dU[ij][e] (the adjoint of TransformKernel) for the
// elements e in [begin, end) of each (C_in, C_out) block, where dU is the sum of the groups'
// partials, added in group order (the result does not depend on how the range is split).
template <int m>
void ReduceKernelGradient(const float* partial, int64_t groups, int64_t block, int64_t begin, int64_t end, float* dk) {
  using T = Transforms<m>;
  constexpr int a = T::a;
  const int64_t n = end - begin;
  std::vector<float> dU(a * a * n);
  for (int xi = 0; xi < a * a; ++xi) {
    float* u = &dU[xi * n];
    std::copy(partial + xi * block + begin, partial + xi * block + end, u);
    for (int64_t group = 1; group < groups; ++group) {
      const float* p = partial + (group * a * a + xi) * block + begin;
      for (int64_t e = 0; e < n; ++e) u[e] += p[e];
    }
  }
  for (int p = 0; p < 3; ++p) {
    for (int q = 0; q < 3; ++q) {
      float* out = dk + (3 * p + q) * block + begin;
      std::fill(out, out + n, 0.0f);
      for (int i = 0; i < a; ++i) {
        for (int j = 0; j < a; ++j) {
          const float w = T::G[i][p] * T::G[j][q];
          if (w == 0.0f) continue;
          const float* u = &dU[(a * i + j) * n];
          for (int64_t e = 0; e < n; ++e) out[e] += w * u[e];
        }
      }
    }
  }
}

template <int m>
void Convolve(OpKernelContext* ctx, const Geometry& g, const float* x, const float* kernel, float* y) {
  constexpr int a2 = Transforms<m>::a * Transforms<m>::a;
  const std::vector<float> U = TransformKernel<m>(kernel, g.c_in, g.c_out);
  const int64_t cost = kChunkTiles * a2 * g.c_in * g.c_out * 2;
  knsde::ParallelFor(ctx, g.chunks(), cost, [&](int64_t begin, int64_t end) {
    std::vector<float> V(a2 * kChunkTiles * g.c_in), M(a2 * kChunkTiles * g.c_out);
    for (int64_t chunk = begin; chunk < end; ++chunk) {
      const int64_t t0 = g.ChunkStart(chunk), count = g.ChunkSize(chunk);
      TransformInput<m>(g, x, t0, count, V.data());
      for (int xi = 0; xi < a2; ++xi) {
        MatMul(&V[xi * count * g.c_in], g.c_in, 1, &U[xi * g.c_in * g.c_out], g.c_out, count, g.c_in, g.c_out,
               &M[xi * count * g.c_out], g.c_out, false);
      }
      TransformOutput<m>(g, M.data(), t0, count, y);
    }
  });
}

template <int m>
void FilterGradient(OpKernelContext* ctx, const Geometry& g, const float* x, const float* dy, float* dk) {
  constexpr int a2 = Transforms<m>::a * Transforms<m>::a;
  const int64_t block = g.c_in * g.c_out;
  // Chunk k adds into partial k % groups (the group's first chunk writes it);
  // partials are summed in order. The group count depends on the shapes only
  // (never on threads): up to 8, fewer for wide kernels so the partials stay
  // within about 16 MB.
  const int64_t max_groups = std::max<int64_t>(2, (int64_t{4} << 20) / (a2 * block));
  const int64_t groups = std::min<int64_t>(g.chunks(), std::min<int64_t>(8, max_groups));
  if (groups == 0) {
    std::fill(dk, dk + 9 * block, 0.0f);
    return;
  }
  std::unique_ptr<float[]> partial(new float[groups * a2 * block]);
  const int64_t cost = g.chunks() / groups * kChunkTiles * a2 * block * 2;
  knsde::ParallelFor(ctx, groups, cost, [&](int64_t begin, int64_t end) {
    std::vector<float> V(a2 * kChunkTiles * g.c_in), dM(a2 * kChunkTiles * g.c_out);
    for (int64_t group = begin; group < end; ++group) {
      float* dU = &partial[group * a2 * block];
      for (int64_t chunk = group; chunk < g.chunks(); chunk += groups) {
        const int64_t t0 = g.ChunkStart(chunk), count = g.ChunkSize(chunk);
        TransformInput<m>(g, x, t0, count, V.data());
        TransformOutputGradient<m>(g, dy, t0, count, dM.data());
        for (int xi = 0; xi < a2; ++xi) {
          // dU_xi (C_in x C_out) (+)= V_xi^T (C_in x count) dM_xi (count x C_out)
          MatMul(&V[xi * count * g.c_in], 1, g.c_in, &dM[xi * count * g.c_out], g.c_out, g.c_in, count, g.c_out,
                 dU + xi * block, g.c_out, chunk != group);
        }
      }
    }
  });
  knsde::ParallelFor(ctx, block, (groups + 9) * a2, [&](int64_t begin, int64_t end) {
    ReduceKernelGradient<m>(partial.get(), groups, block, begin, end, dk);
  });
}

// Both ops' output tile size m, from the op's `tile` attribute.
class WinogradOp : public OpKernel {
 public:
  explicit WinogradOp(OpKernelConstruction* ctx) : OpKernel(ctx) {
    OP_REQUIRES_OK(ctx, ctx->GetAttr("tile", &tile_));
    OP_REQUIRES(ctx, tile_ == 2 || tile_ == 4, InvalidArgument("KnsdeWinograd*: tile must be 2 or 4, got ", tile_));
  }

 protected:
  int tile_;
};

class WinogradConvOp : public WinogradOp {
 public:
  using WinogradOp::WinogradOp;

  void Compute(OpKernelContext* ctx) override {
    const Tensor& x_tensor = ctx->input(0);
    const Tensor& kernel_tensor = ctx->input(1);
    OP_REQUIRES(ctx, x_tensor.dims() == 4, InvalidArgument("KnsdeWinogradConv: x must be (B, H, W, C), got ", x_tensor.shape().DebugString()));
    OP_REQUIRES(ctx, kernel_tensor.dims() == 4 && kernel_tensor.dim_size(0) == 3 && kernel_tensor.dim_size(1) == 3 &&
                         kernel_tensor.dim_size(2) == x_tensor.dim_size(3),
                InvalidArgument("KnsdeWinogradConv: kernel must be (3, 3, C_in, C_out) with C_in = x's ",
                                x_tensor.dim_size(3), ", got ", kernel_tensor.shape().DebugString()));
    const Geometry g(x_tensor, kernel_tensor.dim_size(3), tile_);
    OP_REQUIRES_OK(ctx, CheckChannels(g.c_in, "input"));
    OP_REQUIRES_OK(ctx, CheckChannels(g.c_out, "output"));
    Tensor* y_tensor = nullptr;
    OP_REQUIRES_OK(ctx, ctx->allocate_output(0, TensorShape({g.batch, g.height, g.width, g.c_out}), &y_tensor));
    if (g.tiles == 0) return;
    const float* x = x_tensor.flat<float>().data();
    const float* kernel = kernel_tensor.flat<float>().data();
    float* y = y_tensor->flat<float>().data();
    (tile_ == 4 ? Convolve<4> : Convolve<2>)(ctx, g, x, kernel, y);
  }
};

class WinogradFilterGradOp : public WinogradOp {
 public:
  using WinogradOp::WinogradOp;

  void Compute(OpKernelContext* ctx) override {
    const Tensor& x_tensor = ctx->input(0);
    const Tensor& dy_tensor = ctx->input(1);
    OP_REQUIRES(ctx, x_tensor.dims() == 4 && dy_tensor.dims() == 4 &&
                         x_tensor.dim_size(0) == dy_tensor.dim_size(0) &&
                         x_tensor.dim_size(1) == dy_tensor.dim_size(1) && x_tensor.dim_size(2) == dy_tensor.dim_size(2),
                InvalidArgument("KnsdeWinogradFilterGrad: x and dy must be (B, H, W, C_in) and (B, H, W, C_out), got ",
                                x_tensor.shape().DebugString(), " and ", dy_tensor.shape().DebugString()));
    const Geometry g(x_tensor, dy_tensor.dim_size(3), tile_);
    OP_REQUIRES_OK(ctx, CheckChannels(g.c_in, "input"));
    OP_REQUIRES_OK(ctx, CheckChannels(g.c_out, "output"));
    Tensor* dk_tensor = nullptr;
    OP_REQUIRES_OK(ctx, ctx->allocate_output(0, TensorShape({3, 3, g.c_in, g.c_out}), &dk_tensor));
    const float* x = x_tensor.flat<float>().data();
    const float* dy = dy_tensor.flat<float>().data();
    float* dk = dk_tensor->flat<float>().data();
    (tile_ == 4 ? FilterGradient<4> : FilterGradient<2>)(ctx, g, x, dy, dk);
  }
};

REGISTER_KERNEL_BUILDER(Name("KnsdeWinogradConv").Device(DEVICE_CPU), WinogradConvOp);
REGISTER_KERNEL_BUILDER(Name("KnsdeWinogradFilterGrad").Device(DEVICE_CPU), WinogradFilterGradOp);

}  // namespace
