// Task<T>: the coroutine type of node programs and collectives.
//
// A Task is lazy: it starts when awaited (or when the Simulation spawns it) and, when it
// finishes, resumes whoever awaited it (symmetric transfer, so deep chains of awaits do not
// grow the stack). Exceptions propagate to the awaiter. A Task owns its coroutine frame.
// Only the event loop's thread runs coroutines.
#pragma once

#include <coroutine>
#include <exception>
#include <optional>
#include <utility>

namespace dtsim {

template <typename T = void>
class Task;

namespace detail {

struct PromiseBase {
  std::coroutine_handle<> continuation;
  std::exception_ptr error;

  std::suspend_always initial_suspend() noexcept { return {}; }
  struct FinalAwaiter {
    bool await_ready() noexcept { return false; }
    template <typename P>
    std::coroutine_handle<> await_suspend(std::coroutine_handle<P> h) noexcept {
      auto next = h.promise().continuation;
      return next ? next : std::noop_coroutine();
    }
    void await_resume() noexcept {}
  };
  FinalAwaiter final_suspend() noexcept { return {}; }
  void unhandled_exception() { error = std::current_exception(); }
};

}  // namespace detail

// What every Task shares: ownership of the frame, and being awaited.
template <typename Promise>
class TaskBase {
 public:
  TaskBase(TaskBase&& other) noexcept : handle_(std::exchange(other.handle_, nullptr)) {}
  TaskBase& operator=(TaskBase&& other) noexcept {
    if (this != &other) {
      if (handle_) handle_.destroy();
      handle_ = std::exchange(other.handle_, nullptr);
    }
    return *this;
  }
  ~TaskBase() {
    if (handle_) handle_.destroy();
  }

  bool await_ready() const noexcept { return false; }
  std::coroutine_handle<> await_suspend(std::coroutine_handle<> awaiting) noexcept {
    handle_.promise().continuation = awaiting;
    return handle_;
  }

  std::coroutine_handle<Promise> handle() const { return handle_; }
  bool done() const { return handle_ && handle_.done(); }

 protected:
  explicit TaskBase(std::coroutine_handle<Promise> h) : handle_(h) {}
  void rethrow_if_failed() const {
    if (handle_.promise().error) std::rethrow_exception(handle_.promise().error);
  }
  std::coroutine_handle<Promise> handle_;
};

template <typename T>
struct ValuePromise;

template <typename T>
class Task : public TaskBase<ValuePromise<T>> {
 public:
  using promise_type = ValuePromise<T>;
  explicit Task(std::coroutine_handle<promise_type> h) : TaskBase<promise_type>(h) {}
  T await_resume() {
    this->rethrow_if_failed();
    return std::move(*this->handle_.promise().value);
  }
};

template <typename T>
struct ValuePromise : detail::PromiseBase {
  std::optional<T> value;
  Task<T> get_return_object() {
    return Task<T>(std::coroutine_handle<ValuePromise>::from_promise(*this));
  }
  template <typename U>
  void return_value(U&& v) {
    value.emplace(std::forward<U>(v));
  }
};

struct VoidPromise;

template <>
class Task<void> : public TaskBase<VoidPromise> {
 public:
  using promise_type = VoidPromise;
  explicit Task(std::coroutine_handle<promise_type> h) : TaskBase<promise_type>(h) {}
  void await_resume() { rethrow_if_failed(); }
};

struct VoidPromise : detail::PromiseBase {
  Task<void> get_return_object() {
    return Task<void>(std::coroutine_handle<VoidPromise>::from_promise(*this));
  }
  void return_void() {}
};

}  // namespace dtsim
