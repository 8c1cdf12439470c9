// Winograd F(2x2, 3x3) convolutions: 3x3, stride 1, 'same' zero padding,
// float32 channels-last, C_in and C_out multiples of 8.
//
//   KnsdeWinogradConv(x, kernel)        -> y  = conv2d(x, kernel, 1, "SAME")        (B, H, W, C_out)
//   KnsdeWinogradFilterGrad(x, dy)      -> dk = Conv2DBackpropFilter(x, 3x3, dy)    (3, 3, C_in, C_out)
//
// Each 2x2 output tile y = A^T [U (.) V] A with V = B^T d B the tile's 4x4
// input patch d transformed and U = G g G^T the transformed 3x3 kernel g:
// 16 products per output pair of channels where a direct convolution needs 36.
// Per tile position xi of the 4x4 transform the channel sums are a matrix
// product M_xi (tiles x C_out) = V_xi (tiles x C_in) U_xi (C_in x C_out),
// done in L2-sized chunks of tiles by a register-blocked kernel.
// The filter gradient is the adjoint: dU_xi = V_xi^T dM_xi with
// dM = A dY A^T, then dg = G^T dU G, summed over chunks in a fixed order
// (results do not depend on the thread count).
// keras_nsde/kernels/conv_ops.py holds the TensorFlow twins and gradients.

#include <algorithm>
#include <cstring>
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
    .SetShapeFn([](InferenceContext* c) {
      ShapeHandle x, dy;
      TF_RETURN_IF_ERROR(c->WithRank(c->input(0), 4, &x));
      TF_RETURN_IF_ERROR(c->WithRank(c->input(1), 4, &dy));
      c->set_output(0, c->MakeShape({3, 3, c->Dim(x, 3), c->Dim(dy, 3)}));
      return knsde::Ok();
    });

typedef float v8 __attribute__((vector_size(32)));

inline v8 Load(const float* p) {
  v8 v;
  std::memcpy(&v, p, sizeof(v));
  return v;
}

inline void Store(float* p, v8 v) { std::memcpy(p, &v, sizeof(v)); }

inline void AddTo(float* p, v8 v) { Store(p, Load(p) + v); }

constexpr int kTile = 16;        // 4x4 transform positions xi
constexpr int64_t kChunkTiles = 18;  // tiles per chunk (a multiple of the 6-row block; fastest of 6..192 at 64 channels)
constexpr float G[4][3] = {{1, 0, 0}, {0.5f, 0.5f, 0.5f}, {0.5f, -0.5f, 0.5f}, {0, 0, 1}};

struct Geometry {
  int64_t batch, height, width, c_in, c_out, tiles_y, tiles_x, tiles;

  Geometry(const Tensor& x, int64_t out_channels)
      : batch(x.dim_size(0)), height(x.dim_size(1)), width(x.dim_size(2)), c_in(x.dim_size(3)),
        c_out(out_channels), tiles_y((height + 1) / 2), tiles_x((width + 1) / 2),
        tiles(batch * tiles_y * tiles_x) {}

  int64_t chunks() const { return (tiles + kChunkTiles - 1) / kChunkTiles; }

  // Image n and top-left output pixel (y0, x0) of tile number `tile`.
  struct Tile {
    int64_t n, y0, x0;
  };
  Tile TileAt(int64_t tile) const {
    return {tile / (tiles_y * tiles_x), 2 * ((tile / tiles_x) % tiles_y), 2 * (tile % tiles_x)};
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

// The matrix products' vectors: 16 lanes where the library is built for
// AVX-512 (build.py adds -mavx512f on CPUs that have it; a 512-bit FMA does
// twice the work of a 256-bit one on cores with full-width units), else 8.
// The transforms stay on 8 lanes: they move memory, and C_in, C_out need
// only be multiples of 8.
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

// One dimension of B^T d: (d0 - d2, d1 + d2, d2 - d1, d1 - d3).
inline void InputTransform1D(const v8* d, int stride, v8* out, int out_stride) {
  const v8 d0 = d[0], d1 = d[stride], d2 = d[2 * stride], d3 = d[3 * stride];
  out[0] = d0 - d2;
  out[out_stride] = d1 + d2;
  out[2 * out_stride] = d2 - d1;
  out[3 * out_stride] = d1 - d3;
}

// V[xi][t][c] for the chunk's tiles [t0, t0 + count): 16 x count x C_in.
void TransformInput(const Geometry& g, const float* x, int64_t t0, int64_t count, float* V) {
  const int64_t C = g.c_in;
  for (int64_t t = 0; t < count; ++t) {
    const Geometry::Tile tile = g.TileAt(t0 + t);
    for (int64_t c = 0; c < C; c += 8) {
      v8 d[16], rows[16], v[16];
      for (int i = 0; i < 4; ++i) {
        for (int j = 0; j < 4; ++j) {
          const int64_t y = tile.y0 - 1 + i, xx = tile.x0 - 1 + j;  // the 4x4 patch around the 2x2 tile
          d[4 * i + j] = g.Inside(y, xx) ? Load(x + g.Pixel(tile.n, y, xx, C) + c) : v8{};
        }
      }
      for (int j = 0; j < 4; ++j) InputTransform1D(d + j, 4, rows + j, 4);   // B^T d
      for (int i = 0; i < 4; ++i) InputTransform1D(rows + 4 * i, 1, v + 4 * i, 1);  // (B^T d) B
      for (int xi = 0; xi < kTile; ++xi) Store(V + (xi * count + t) * C + c, v[xi]);
    }
  }
}

// y tiles from M[xi][t][co]: A^T m A, with A^T = [[1, 1, 1, 0], [0, 1, -1, -1]].
void TransformOutput(const Geometry& g, const float* M, int64_t t0, int64_t count, float* y) {
  const int64_t C = g.c_out;
  for (int64_t t = 0; t < count; ++t) {
    const Geometry::Tile tile = g.TileAt(t0 + t);
    for (int64_t c = 0; c < C; c += 8) {
      v8 m[16], rows[8];
      for (int xi = 0; xi < kTile; ++xi) m[xi] = Load(M + (xi * count + t) * C + c);
      for (int j = 0; j < 4; ++j) {
        rows[j] = m[j] + m[4 + j] + m[8 + j];
        rows[4 + j] = m[4 + j] - m[8 + j] - m[12 + j];
      }
      for (int a = 0; a < 2; ++a) {
        const v8* r = rows + 4 * a;
        const v8 out[2] = {r[0] + r[1] + r[2], r[1] - r[2] - r[3]};
        for (int b = 0; b < 2; ++b) {
          if (g.Inside(tile.y0 + a, tile.x0 + b)) Store(y + g.Pixel(tile.n, tile.y0 + a, tile.x0 + b, C) + c, out[b]);
        }
      }
    }
  }
}

// dM[xi][t][co] = (A dY A^T)[xi] for the chunk's dy tiles (zeros beyond the image).
void TransformOutputGradient(const Geometry& g, const float* dy, int64_t t0, int64_t count, float* dM) {
  const int64_t C = g.c_out;
  for (int64_t t = 0; t < count; ++t) {
    const Geometry::Tile tile = g.TileAt(t0 + t);
    for (int64_t c = 0; c < C; c += 8) {
      v8 d[4];
      for (int a = 0; a < 2; ++a) {
        for (int b = 0; b < 2; ++b) {
          const int64_t y = tile.y0 + a, x = tile.x0 + b;
          d[2 * a + b] = g.Inside(y, x) ? Load(dy + g.Pixel(tile.n, y, x, C) + c) : v8{};
        }
      }
      // A = [[1, 0], [1, 1], [1, -1], [0, -1]] along each axis.
      v8 rows[8];
      for (int b = 0; b < 2; ++b) {
        rows[0 * 2 + b] = d[b];
        rows[1 * 2 + b] = d[b] + d[2 + b];
        rows[2 * 2 + b] = d[b] - d[2 + b];
        rows[3 * 2 + b] = -d[2 + b];
      }
      for (int i = 0; i < 4; ++i) {
        const v8 r0 = rows[2 * i], r1 = rows[2 * i + 1];
        const v8 m[4] = {r0, r0 + r1, r0 - r1, -r1};
        for (int j = 0; j < 4; ++j) Store(dM + ((4 * i + j) * count + t) * C + c, m[j]);
      }
    }
  }
}

// U[xi][ci][co] = (G g G^T)[xi] for a (3, 3, C_in, C_out) kernel.
std::vector<float> TransformKernel(const float* kernel, int64_t c_in, int64_t c_out) {
  const int64_t block = c_in * c_out;
  std::vector<float> U(kTile * block, 0.0f);
  for (int i = 0; i < 4; ++i) {
    for (int j = 0; j < 4; ++j) {
      float* u = &U[(4 * i + j) * block];
      for (int a = 0; a < 3; ++a) {
        for (int b = 0; b < 3; ++b) {
          const float w = G[i][a] * G[j][b];
          if (w == 0.0f) continue;
          const float* k = kernel + (3 * a + b) * block;
          for (int64_t e = 0; e < block; ++e) u[e] += w * k[e];
        }
      }
    }
  }
  return U;
}

class WinogradConvOp : public OpKernel {
 public:
  explicit WinogradConvOp(OpKernelConstruction* ctx) : OpKernel(ctx) {}

  void Compute(OpKernelContext* ctx) override {
    const Tensor& x_tensor = ctx->input(0);
    const Tensor& kernel_tensor = ctx->input(1);
    OP_REQUIRES(ctx, x_tensor.dims() == 4, InvalidArgument("KnsdeWinogradConv: x must be (B, H, W, C), got ", x_tensor.shape().DebugString()));
    OP_REQUIRES(ctx, kernel_tensor.dims() == 4 && kernel_tensor.dim_size(0) == 3 && kernel_tensor.dim_size(1) == 3 &&
                         kernel_tensor.dim_size(2) == x_tensor.dim_size(3),
                InvalidArgument("KnsdeWinogradConv: kernel must be (3, 3, C_in, C_out) with C_in = x's ",
                                x_tensor.dim_size(3), ", got ", kernel_tensor.shape().DebugString()));
    const Geometry g(x_tensor, kernel_tensor.dim_size(3));
    OP_REQUIRES_OK(ctx, CheckChannels(g.c_in, "input"));
    OP_REQUIRES_OK(ctx, CheckChannels(g.c_out, "output"));
    Tensor* y_tensor = nullptr;
    OP_REQUIRES_OK(ctx, ctx->allocate_output(0, TensorShape({g.batch, g.height, g.width, g.c_out}), &y_tensor));
    if (g.tiles == 0) return;
    const std::vector<float> U = TransformKernel(kernel_tensor.flat<float>().data(), g.c_in, g.c_out);
    const float* x = x_tensor.flat<float>().data();
    float* y = y_tensor->flat<float>().data();
    const int64_t cost = kChunkTiles * kTile * g.c_in * g.c_out * 2;
    knsde::ParallelFor(ctx, g.chunks(), cost, [&](int64_t begin, int64_t end) {
      std::vector<float> V(kTile * kChunkTiles * g.c_in), M(kTile * kChunkTiles * g.c_out);
      for (int64_t chunk = begin; chunk < end; ++chunk) {
        const int64_t t0 = chunk * kChunkTiles, count = std::min(kChunkTiles, g.tiles - t0);
        TransformInput(g, x, t0, count, V.data());
        for (int xi = 0; xi < kTile; ++xi) {
          MatMul(&V[xi * count * g.c_in], g.c_in, 1, &U[xi * g.c_in * g.c_out], g.c_out, count, g.c_in, g.c_out,
                 &M[xi * count * g.c_out], g.c_out, false);
        }
        TransformOutput(g, M.data(), t0, count, y);
      }
    });
  }
};

class WinogradFilterGradOp : public OpKernel {
 public:
  explicit WinogradFilterGradOp(OpKernelConstruction* ctx) : OpKernel(ctx) {}

  void Compute(OpKernelContext* ctx) override {
    const Tensor& x_tensor = ctx->input(0);
    const Tensor& dy_tensor = ctx->input(1);
    OP_REQUIRES(ctx, x_tensor.dims() == 4 && dy_tensor.dims() == 4 &&
                         x_tensor.dim_size(0) == dy_tensor.dim_size(0) &&
                         x_tensor.dim_size(1) == dy_tensor.dim_size(1) && x_tensor.dim_size(2) == dy_tensor.dim_size(2),
                InvalidArgument("KnsdeWinogradFilterGrad: x and dy must be (B, H, W, C_in) and (B, H, W, C_out), got ",
                                x_tensor.shape().DebugString(), " and ", dy_tensor.shape().DebugString()));
    const Geometry g(x_tensor, dy_tensor.dim_size(3));
    OP_REQUIRES_OK(ctx, CheckChannels(g.c_in, "input"));
    OP_REQUIRES_OK(ctx, CheckChannels(g.c_out, "output"));
    Tensor* dk_tensor = nullptr;
    OP_REQUIRES_OK(ctx, ctx->allocate_output(0, TensorShape({3, 3, g.c_in, g.c_out}), &dk_tensor));
    const int64_t block = g.c_in * g.c_out;
    // Chunk k adds into partial k % groups; partials are summed in order. The
    // group count depends on the shapes only (never on threads): up to 16,
    // fewer for wide kernels so the partials stay within about 16 MB.
    const int64_t max_groups = std::max<int64_t>(2, (int64_t{4} << 20) / (kTile * block));
    const int64_t groups = std::min<int64_t>(g.chunks(), std::min<int64_t>(16, max_groups));
    std::vector<float> partial(std::max<int64_t>(groups, 1) * kTile * block, 0.0f);
    const float* x = x_tensor.flat<float>().data();
    const float* dy = dy_tensor.flat<float>().data();
    const int64_t cost = g.chunks() / std::max<int64_t>(groups, 1) * kChunkTiles * kTile * block * 2;
    knsde::ParallelFor(ctx, groups, cost, [&](int64_t begin, int64_t end) {
      std::vector<float> V(kTile * kChunkTiles * g.c_in), dM(kTile * kChunkTiles * g.c_out);
      for (int64_t group = begin; group < end; ++group) {
        float* dU = &partial[group * kTile * block];
        for (int64_t chunk = group; chunk < g.chunks(); chunk += groups) {
          const int64_t t0 = chunk * kChunkTiles, count = std::min(kChunkTiles, g.tiles - t0);
          TransformInput(g, x, t0, count, V.data());
          TransformOutputGradient(g, dy, t0, count, dM.data());
          for (int xi = 0; xi < kTile; ++xi) {
            // dU_xi (C_in x C_out) += V_xi^T (C_in x count) dM_xi (count x C_out)
            MatMul(&V[xi * count * g.c_in], 1, g.c_in, &dM[xi * count * g.c_out], g.c_out, g.c_in, count, g.c_out,
                   dU + xi * block, g.c_out, true);
          }
        }
      }
    });
    for (int64_t group = 1; group < groups; ++group) {
      const float* p = &partial[group * kTile * block];
      for (int64_t e = 0; e < kTile * block; ++e) partial[e] += p[e];
    }
    // dg[a][b] = sum_ij G[i][a] G[j][b] dU[ij]
    float* dk = dk_tensor->flat<float>().data();
    std::fill(dk, dk + 9 * block, 0.0f);
    for (int a = 0; a < 3; ++a) {
      for (int b = 0; b < 3; ++b) {
        float* out = dk + (3 * a + b) * block;
        for (int i = 0; i < 4; ++i) {
          for (int j = 0; j < 4; ++j) {
            const float w = G[i][a] * G[j][b];
            if (w == 0.0f) continue;
            const float* du = &partial[(4 * i + j) * block];
            for (int64_t e = 0; e < block; ++e) out[e] += w * du[e];
          }
        }
      }
    }
  }
};

REGISTER_KERNEL_BUILDER(Name("KnsdeWinogradConv").Device(DEVICE_CPU), WinogradConvOp);
REGISTER_KERNEL_BUILDER(Name("KnsdeWinogradFilterGrad").Device(DEVICE_CPU), WinogradFilterGradOp);

}  // namespace
