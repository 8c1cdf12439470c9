// Fused CPU kernels for GroupNorm(+ReLU) on float32 channels-last images.
//
// Each kernel is one pass over the big (B, H, W, C) tensors; all per-group
// algebra (means, variances, gradient coefficients) stays in Python on
// (B, C) tensors, shared with the pure-TensorFlow twins in
// keras_nsde/kernels/group_norm_ops.py, which define what these compute:
//
//   KnsdeChannelMoments(x)                    -> sum_HW x, sum_HW x^2        (B, C), (B, C)
//   KnsdeAffineRelu(x, scale, shift)          -> act(x * scale + shift)      (B, H, W, C)
//   KnsdeMaskedChannelSums(dy, x, scale, shift) -> sum_HW m, sum_HW m * x    (B, C), (B, C)
//   KnsdeAffineCombine(dy, x, scale, shift, a, b, c) -> m * a + x * b + c    (B, H, W, C)
//
// with scale, shift, a, b, c of shape (B, C) broadcast over H and W, and
// m = dy * [x * scale + shift > 0] when relu is true (the ReLU's gradient
// mask, recomputed from x instead of stored), m = dy otherwise.
// Row sums are taken in float and accumulated over rows in double.

#include <algorithm>
#include <vector>

#include "tensorflow/core/framework/op.h"
#include "tensorflow/core/framework/op_kernel.h"
#include "tensorflow/core/framework/shape_inference.h"
#include "knsde_common.h"

namespace {

using namespace knsde;  // TensorFlow's kernel names, InvalidArgument, Status (knsde_common.h)

// (B, C) per-image, per-channel outputs from a (B, H, W, C) input.
Status ChannelStatsShape(InferenceContext* c) {
  ShapeHandle x;
  TF_RETURN_IF_ERROR(c->WithRank(c->input(0), 4, &x));
  ShapeHandle stats = c->Matrix(c->Dim(x, 0), c->Dim(x, 3));
  c->set_output(0, stats);
  c->set_output(1, stats);
  return knsde::Ok();
}

Status SameAsInputShape(InferenceContext* c) {
  ShapeHandle x;
  TF_RETURN_IF_ERROR(c->WithRank(c->input(0), 4, &x));
  c->set_output(0, x);
  return knsde::Ok();
}

REGISTER_OP("KnsdeChannelMoments")
    .Input("x: float")
    .Output("sum: float")
    .Output("sum_sq: float")
    .SetShapeFn(ChannelStatsShape);

REGISTER_OP("KnsdeAffineRelu")
    .Input("x: float")
    .Input("scale: float")
    .Input("shift: float")
    .Attr("relu: bool")
    .Output("y: float")
    .SetShapeFn(SameAsInputShape);

REGISTER_OP("KnsdeMaskedChannelSums")
    .Input("dy: float")
    .Input("x: float")
    .Input("scale: float")
    .Input("shift: float")
    .Attr("relu: bool")
    .Output("sum_m: float")
    .Output("sum_m_x: float")
    .SetShapeFn(ChannelStatsShape);

REGISTER_OP("KnsdeAffineCombine")
    .Input("dy: float")
    .Input("x: float")
    .Input("scale: float")
    .Input("shift: float")
    .Input("a: float")
    .Input("b: float")
    .Input("c: float")
    .Attr("relu: bool")
    .Output("dx: float")
    .SetShapeFn(SameAsInputShape);

// Shapes of one call: B images of `rows` = H * W pixels of C channels.
struct Layout {
  int64_t batch, rows, channels;
};

Status CheckImage(const Tensor& t, const char* name, Layout* layout) {
  if (t.dims() != 4) {
    return InvalidArgument(name, " must be (batch, height, width, channels); got shape ",
                           t.shape().DebugString());
  }
  *layout = {t.dim_size(0), t.dim_size(1) * t.dim_size(2), t.dim_size(3)};
  return knsde::Ok();
}

Status CheckSame(const Tensor& t, const Tensor& like, const char* name) {
  if (t.shape() != like.shape()) {
    return InvalidArgument(name, " must have shape ", like.shape().DebugString(), "; got ",
                           t.shape().DebugString());
  }
  return knsde::Ok();
}

Status CheckCoefficient(const Tensor& t, const Layout& layout, const char* name) {
  if (t.dims() != 2 || t.dim_size(0) != layout.batch || t.dim_size(1) != layout.channels) {
    return InvalidArgument(name, " must have shape (", layout.batch, ", ", layout.channels, "); got ",
                           t.shape().DebugString());
  }
  return knsde::Ok();
}

// Runs fn(first_pixel_row, last_pixel_row) over all B * rows pixels in shards.
template <typename Fn>
void ParallelRows(OpKernelContext* ctx, const Layout& layout, int64_t cost_per_row, Fn fn) {
  knsde::ParallelFor(ctx, layout.batch * layout.rows, cost_per_row, fn);
}

// Per-(image, channel) sums of two terms: terms(pixel, first, second) adds
// one pixel's C values of each to `first` and `second`. Chunks of 64 pixels
// are summed in float, chunks in double.
template <typename RowTerms>
void ChannelSums(OpKernelContext* ctx, const Layout& layout, RowTerms terms, float* first_out,
                 float* second_out) {
  const int64_t C = layout.channels;
  // One partial (first, second) pair per pixel chunk of fixed size: shards
  // write disjoint chunks, so the result does not depend on the sharding.
  const int64_t chunk = 64;
  const int64_t chunks_per_image = (layout.rows + chunk - 1) / chunk;
  std::vector<float> partial(layout.batch * chunks_per_image * 2 * C, 0.0f);
  knsde::ParallelFor(ctx, layout.batch * chunks_per_image, chunk * C * 6, [&](int64_t begin, int64_t end) {
    for (int64_t job = begin; job < end; ++job) {
      const int64_t image = job / chunks_per_image;
      const int64_t row_begin = (job % chunks_per_image) * chunk;
      const int64_t row_end = std::min(row_begin + chunk, layout.rows);
      float* first = &partial[job * 2 * C];
      float* second = first + C;
      for (int64_t row = row_begin; row < row_end; ++row) {
        terms(image * layout.rows + row, first, second);
      }
    }
  });
  for (int64_t image = 0; image < layout.batch; ++image) {
    std::vector<double> first(C, 0.0), second(C, 0.0);
    for (int64_t k = 0; k < chunks_per_image; ++k) {
      const float* p = &partial[(image * chunks_per_image + k) * 2 * C];
      for (int64_t c = 0; c < C; ++c) {
        first[c] += p[c];
        second[c] += p[C + c];
      }
    }
    for (int64_t c = 0; c < C; ++c) {
      first_out[image * C + c] = static_cast<float>(first[c]);
      second_out[image * C + c] = static_cast<float>(second[c]);
    }
  }
}

class ChannelMomentsOp : public OpKernel {
 public:
  explicit ChannelMomentsOp(OpKernelConstruction* ctx) : OpKernel(ctx) {}

  void Compute(OpKernelContext* ctx) override {
    const Tensor& x_tensor = ctx->input(0);
    Layout layout;
    OP_REQUIRES_OK(ctx, CheckImage(x_tensor, "x", &layout));
    Tensor *sum, *sum_sq;
    const TensorShape stats({layout.batch, layout.channels});
    OP_REQUIRES_OK(ctx, ctx->allocate_output(0, stats, &sum));
    OP_REQUIRES_OK(ctx, ctx->allocate_output(1, stats, &sum_sq));
    const float* x = x_tensor.flat<float>().data();
    const int64_t C = layout.channels;
    ChannelSums(
        ctx, layout,
        [x, C](int64_t pixel, float* first, float* second) {
          const float* xp = x + pixel * C;
          for (int64_t c = 0; c < C; ++c) {
            first[c] += xp[c];
            second[c] += xp[c] * xp[c];
          }
        },
        sum->flat<float>().data(), sum_sq->flat<float>().data());
  }
};

class AffineReluOp : public OpKernel {
 public:
  explicit AffineReluOp(OpKernelConstruction* ctx) : OpKernel(ctx) {
    OP_REQUIRES_OK(ctx, ctx->GetAttr("relu", &relu_));
  }

  void Compute(OpKernelContext* ctx) override {
    const Tensor& x_tensor = ctx->input(0);
    Layout layout;
    OP_REQUIRES_OK(ctx, CheckImage(x_tensor, "x", &layout));
    OP_REQUIRES_OK(ctx, CheckCoefficient(ctx->input(1), layout, "scale"));
    OP_REQUIRES_OK(ctx, CheckCoefficient(ctx->input(2), layout, "shift"));
    Tensor* y_tensor;
    OP_REQUIRES_OK(ctx, ctx->allocate_output(0, x_tensor.shape(), &y_tensor));
    const float* x = x_tensor.flat<float>().data();
    const float* scale = ctx->input(1).flat<float>().data();
    const float* shift = ctx->input(2).flat<float>().data();
    float* y = y_tensor->flat<float>().data();
    const int64_t C = layout.channels, rows = layout.rows;
    const bool relu = relu_;
    ParallelRows(ctx, layout, C * 3, [=](int64_t begin, int64_t end) {
      for (int64_t pixel = begin; pixel < end; ++pixel) {
        const float* s = scale + (pixel / rows) * C;
        const float* t = shift + (pixel / rows) * C;
        const float* xp = x + pixel * C;
        float* yp = y + pixel * C;
        if (relu) {
          for (int64_t c = 0; c < C; ++c) yp[c] = std::max(xp[c] * s[c] + t[c], 0.0f);
        } else {
          for (int64_t c = 0; c < C; ++c) yp[c] = xp[c] * s[c] + t[c];
        }
      }
    });
  }

 private:
  bool relu_;
};

// m = dy where the forward ReLU passed x * s + t (everywhere without ReLU), else 0.
inline float Masked(bool relu, float dy, float x, float s, float t) {
  return (!relu || x * s + t > 0.0f) ? dy : 0.0f;
}

// The backward kernels' inputs: dy and x of one shape, then `count` (B, C)
// coefficients, the first two being the forward's scale and shift.
class BackwardKernel : public OpKernel {
 public:
  explicit BackwardKernel(OpKernelConstruction* ctx) : OpKernel(ctx) {
    OP_REQUIRES_OK(ctx, ctx->GetAttr("relu", &relu_));
  }

 protected:
  struct Inputs {
    Layout layout;
    const float *dy, *x;
    std::vector<const float*> coefficients;
  };

  Status Read(OpKernelContext* ctx, const std::vector<const char*>& names, Inputs* in) {
    const Tensor& dy = ctx->input(0);
    const Tensor& x = ctx->input(1);
    TF_RETURN_IF_ERROR(CheckImage(x, "x", &in->layout));
    TF_RETURN_IF_ERROR(CheckSame(dy, x, "dy"));
    for (size_t i = 0; i < names.size(); ++i) {
      TF_RETURN_IF_ERROR(CheckCoefficient(ctx->input(2 + i), in->layout, names[i]));
      in->coefficients.push_back(ctx->input(2 + i).flat<float>().data());
    }
    in->dy = dy.flat<float>().data();
    in->x = x.flat<float>().data();
    return knsde::Ok();
  }

  bool relu_;
};

class MaskedChannelSumsOp : public BackwardKernel {
 public:
  using BackwardKernel::BackwardKernel;

  void Compute(OpKernelContext* ctx) override {
    Inputs in;
    OP_REQUIRES_OK(ctx, Read(ctx, {"scale", "shift"}, &in));
    Tensor *sum_m, *sum_m_x;
    const TensorShape stats({in.layout.batch, in.layout.channels});
    OP_REQUIRES_OK(ctx, ctx->allocate_output(0, stats, &sum_m));
    OP_REQUIRES_OK(ctx, ctx->allocate_output(1, stats, &sum_m_x));
    const float *dy = in.dy, *x = in.x, *scale = in.coefficients[0], *shift = in.coefficients[1];
    const int64_t C = in.layout.channels, rows = in.layout.rows;
    const bool relu = relu_;
    ChannelSums(
        ctx, in.layout,
        [=](int64_t pixel, float* first, float* second) {
          const int64_t offset = (pixel / rows) * C;
          const float *s = scale + offset, *t = shift + offset;
          const float* xp = x + pixel * C;
          const float* dyp = dy + pixel * C;
          for (int64_t c = 0; c < C; ++c) {
            const float m = Masked(relu, dyp[c], xp[c], s[c], t[c]);
            first[c] += m;
            second[c] += m * xp[c];
          }
        },
        sum_m->flat<float>().data(), sum_m_x->flat<float>().data());
  }
};

class AffineCombineOp : public BackwardKernel {
 public:
  using BackwardKernel::BackwardKernel;

  void Compute(OpKernelContext* ctx) override {
    Inputs in;
    OP_REQUIRES_OK(ctx, Read(ctx, {"scale", "shift", "a", "b", "c"}, &in));
    Tensor* dx_tensor;
    OP_REQUIRES_OK(ctx, ctx->allocate_output(0, ctx->input(1).shape(), &dx_tensor));
    const float *dy = in.dy, *x = in.x;
    const float *scale = in.coefficients[0], *shift = in.coefficients[1];
    const float *a = in.coefficients[2], *b = in.coefficients[3], *c_in = in.coefficients[4];
    float* dx = dx_tensor->flat<float>().data();
    const int64_t C = in.layout.channels, rows = in.layout.rows;
    const bool relu = relu_;
    ParallelRows(ctx, in.layout, C * 6, [=](int64_t begin, int64_t end) {
      for (int64_t pixel = begin; pixel < end; ++pixel) {
        const int64_t offset = (pixel / rows) * C;
        const float *s = scale + offset, *t = shift + offset;
        const float *ap = a + offset, *bp = b + offset, *cp = c_in + offset;
        const float* xp = x + pixel * C;
        const float* dyp = dy + pixel * C;
        float* dxp = dx + pixel * C;
        for (int64_t c = 0; c < C; ++c) {
          dxp[c] = Masked(relu, dyp[c], xp[c], s[c], t[c]) * ap[c] + xp[c] * bp[c] + cp[c];
        }
      }
    });
  }
};

REGISTER_KERNEL_BUILDER(Name("KnsdeChannelMoments").Device(DEVICE_CPU), ChannelMomentsOp);
REGISTER_KERNEL_BUILDER(Name("KnsdeAffineRelu").Device(DEVICE_CPU), AffineReluOp);
REGISTER_KERNEL_BUILDER(Name("KnsdeMaskedChannelSums").Device(DEVICE_CPU), MaskedChannelSumsOp);
REGISTER_KERNEL_BUILDER(Name("KnsdeAffineCombine").Device(DEVICE_CPU), AffineCombineOp);

}  // namespace
