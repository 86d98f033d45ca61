// tcc's shim of the hls_stream.h subset the generated sparse designs use, for C-simulation with
// g++ where the vendor headers are absent: hls::stream<T> is a bounded blocking FIFO (write waits
// while it holds its depth, read waits while it is empty), and hls::tasks runs each module of a
// dataflow region in its own thread, so the design streams as in hardware and memory stays
// bounded by the declared FIFO depths and buffers, whatever the frame size.
#pragma once
#include <condition_variable>
#include <cstddef>
#include <functional>
#ifdef __GLIBC__
#include <malloc.h>
#endif
#include <mutex>
#include <thread>
#include <vector>

namespace hls {

template <typename T>
class stream {
 public:
  stream() : ring_(2) {}
  explicit stream(const char*) : stream() {}
  stream(const stream&) = delete;
  stream& operator=(const stream&) = delete;

  // The FIFO's capacity in tokens; set before the first write (the storage is allocated once, as
  // the FIFO's memory is on chip: nothing is allocated while tokens stream).
  void set_depth(std::size_t depth) { ring_.assign(depth < 1 ? 1 : depth, T()); }

  void write(const T& value) {
    std::unique_lock<std::mutex> lock(mutex_);
    not_full_.wait(lock, [&] { return size_ < ring_.size(); });
    ring_[(head_ + size_) % ring_.size()] = value;
    ++size_;
    if (size_ > peak_) peak_ = size_;
    not_empty_.notify_one();
  }

  T read() {
    std::unique_lock<std::mutex> lock(mutex_);
    not_empty_.wait(lock, [&] { return size_ > 0; });
    T value = ring_[head_];
    head_ = (head_ + 1) % ring_.size();
    --size_;
    not_full_.notify_one();
    return value;
  }

  void operator<<(const T& value) { write(value); }
  void operator>>(T& value) { value = read(); }

  bool empty() {
    std::lock_guard<std::mutex> lock(mutex_);
    return size_ == 0;
  }

  std::size_t peak() const { return peak_; }

 private:
  std::vector<T> ring_;  // the vendor default depth is 2
  std::size_t head_ = 0, size_ = 0, peak_ = 0;
  std::mutex mutex_;
  std::condition_variable not_empty_, not_full_;
};

// The modules of one dataflow region, each in its own thread.  glibc would give every thread its
// own malloc arena, whose reservations count in the resident size with the thread count and the
// run's length (measured: 3.9 MB with one arena, 160-930 MB without, for a 1024 x 1024 frame and
// 9 threads); nothing allocates while tokens stream, so one arena serves them all.
class tasks {
 public:
  tasks() {
#ifdef __GLIBC__
    mallopt(M_ARENA_MAX, 1);
#endif
  }
  void run(std::function<void()> task) { threads_.emplace_back(std::move(task)); }
  void join() {
    for (auto& t : threads_) t.join();
    threads_.clear();
  }
  ~tasks() { join(); }

 private:
  std::vector<std::thread> threads_;
};

}  // namespace hls
