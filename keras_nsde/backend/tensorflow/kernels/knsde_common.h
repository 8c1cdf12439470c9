// What both kernel sources share: status helpers and the CPU thread pool,
// written against TensorFlow's current (non-deprecated) APIs.
#ifndef KERAS_NSDE_KERNELS_KNSDE_COMMON_H_
#define KERAS_NSDE_KERNELS_KNSDE_COMMON_H_

#include <cstdint>
#include <functional>
#include <utility>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "tensorflow/core/framework/op_kernel.h"
#include "tensorflow/core/framework/shape_inference.h"
#include "tensorflow/core/platform/threadpool.h"

namespace knsde {

// The TensorFlow names every kernel source uses (`using namespace knsde;` in each).
using tensorflow::DEVICE_CPU;
using tensorflow::OpKernel;
using tensorflow::OpKernelConstruction;
using tensorflow::OpKernelContext;
using tensorflow::Tensor;
using tensorflow::TensorShape;
using tensorflow::shape_inference::InferenceContext;
using tensorflow::shape_inference::ShapeHandle;

using Status = absl::Status;

inline Status Ok() { return absl::OkStatus(); }

// InvalidArgument("x must be ", 4, "-D") -> an InvalidArgument status with the concatenated message.
template <typename... Parts>
Status InvalidArgument(Parts&&... parts) {
  return absl::InvalidArgumentError(absl::StrCat(std::forward<Parts>(parts)...));
}

// Runs fn(begin, end) over [0, total) on the op's CPU worker threads, in
// shards sized by the estimated cost of one unit (in cycles).
inline void ParallelFor(tensorflow::OpKernelContext* ctx, int64_t total, int64_t cost_per_unit,
                        const std::function<void(int64_t, int64_t)>& fn) {
  ctx->device()->tensorflow_cpu_worker_threads()->workers->ParallelFor(
      total, tsl::thread::ThreadPool::SchedulingParams::Adaptive(cost_per_unit), fn);
}

}  // namespace knsde

#endif  // KERAS_NSDE_KERNELS_KNSDE_COMMON_H_
