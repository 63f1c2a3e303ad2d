// A Transport whose ranks are threads of one process: buffered mailboxes under one lock. For
// the emulation's tests, which then need no mpirun (and run under the sanitizers).
#pragma once

#include <chrono>
#include <condition_variable>
#include <deque>
#include <functional>
#include <mutex>
#include <thread>
#include <vector>

#include "sim/emulate/transport.hpp"

namespace dtsim::testing {

class ThreadWorld {
 public:
  explicit ThreadWorld(int ranks) : ranks_(ranks), boxes_(static_cast<std::size_t>(ranks)) {}

  // Runs body(transport) on `ranks` threads, one per rank, and waits for them.
  void run(const std::function<void(Transport&)>& body);

 private:
  friend class ThreadTransport;
  struct Message {
    int from = 0;
    int tag = 0;
    std::vector<float> floats;
    std::vector<double> doubles;
  };
  static constexpr int kGatherTag = -1;
  static constexpr int kSumTag = -2;

  void put(int to, Message m) {
    {
      std::lock_guard lock(mutex_);
      boxes_[static_cast<std::size_t>(to)].push_back(std::move(m));
    }
    changed_.notify_all();
  }
  // The first message in `me`'s box from `from` (any if -1) with `tag`.
  Message take(int me, int from, int tag) {
    std::unique_lock lock(mutex_);
    std::deque<Message>& box = boxes_[static_cast<std::size_t>(me)];
    for (;;) {
      for (auto it = box.begin(); it != box.end(); ++it) {
        if (it->tag == tag && (from < 0 || it->from == from)) {
          Message m = std::move(*it);
          box.erase(it);
          return m;
        }
      }
      changed_.wait(lock);
    }
  }
  void barrier() {
    std::unique_lock lock(mutex_);
    const std::uint64_t round = round_;
    if (++arrived_ == ranks_) {
      arrived_ = 0;
      ++round_;
      changed_.notify_all();
      return;
    }
    changed_.wait(lock, [&] { return round_ != round; });
  }

  int ranks_;
  std::mutex mutex_;
  std::condition_variable changed_;
  std::vector<std::deque<Message>> boxes_;
  int arrived_ = 0;
  std::uint64_t round_ = 0;
};

class ThreadTransport : public Transport {
 public:
  ThreadTransport(ThreadWorld& world, int rank) : world_(world), rank_(rank) {}
  int rank() const override { return rank_; }
  int size() const override { return world_.ranks_; }
  void send(int to, int tag, std::span<const float> data) override {
    world_.put(to, {rank_, tag, {data.begin(), data.end()}, {}});
  }
  void recv(int from, int tag, std::span<float> out) override {
    const ThreadWorld::Message m = world_.take(rank_, from, tag);
    if (m.floats.size() != out.size()) throw std::logic_error("ThreadTransport: wrong size");
    std::copy(m.floats.begin(), m.floats.end(), out.begin());
  }
  void send_recv(int to, std::span<const float> data, int from, std::span<float> out,
                 int tag) override {
    send(to, tag, data);
    recv(from, tag, out);
  }
  int recv_any(int tag, std::span<float> out, std::size_t& count) override {
    const ThreadWorld::Message m = world_.take(rank_, -1, tag);
    if (m.floats.size() > out.size()) throw std::logic_error("ThreadTransport: too long");
    std::copy(m.floats.begin(), m.floats.end(), out.begin());
    count = m.floats.size();
    return m.from;
  }
  // Summed at rank 0 in rank order, then sent back.
  void allreduce_sum(std::span<float> data) override {
    if (rank_ != 0) {
      world_.put(0, {rank_, ThreadWorld::kSumTag, {data.begin(), data.end()}, {}});
      const ThreadWorld::Message m = world_.take(rank_, 0, ThreadWorld::kSumTag);
      std::copy(m.floats.begin(), m.floats.end(), data.begin());
      return;
    }
    for (int r = 1; r < size(); ++r) {
      const ThreadWorld::Message m = world_.take(0, r, ThreadWorld::kSumTag);
      for (std::size_t i = 0; i < data.size(); ++i) data[i] += m.floats[i];
    }
    for (int r = 1; r < size(); ++r) {
      world_.put(r, {0, ThreadWorld::kSumTag, {data.begin(), data.end()}, {}});
    }
  }
  std::vector<std::vector<double>> gather(std::span<const double> mine, int root) override {
    if (rank_ != root) {
      world_.put(root, {rank_, ThreadWorld::kGatherTag, {}, {mine.begin(), mine.end()}});
      return {};
    }
    std::vector<std::vector<double>> all(static_cast<std::size_t>(size()));
    all[static_cast<std::size_t>(root)].assign(mine.begin(), mine.end());
    for (int r = 0; r < size(); ++r) {
      if (r != root)
        all[static_cast<std::size_t>(r)] = world_.take(root, r, ThreadWorld::kGatherTag).doubles;
    }
    return all;
  }
  void barrier() override { world_.barrier(); }
  double now() const override {
    return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch())
        .count();
  }

 private:
  ThreadWorld& world_;
  int rank_;
};

inline void ThreadWorld::run(const std::function<void(Transport&)>& body) {
  std::vector<std::thread> threads;
  for (int r = 0; r < ranks_; ++r) {
    threads.emplace_back([this, r, &body] {
      ThreadTransport t(*this, r);
      body(t);
    });
  }
  for (std::thread& t : threads) t.join();
}

}  // namespace dtsim::testing
