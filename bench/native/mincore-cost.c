/*
 * What the residency check of a send on the event loop costs (edge/native/sendfile.c): mincore(2)
 * over 512 KiB (LOOP_SEND_BYTES) of a file in the page cache, on a mapping made and unmapped
 * for each check against one kept open, in a process with idle threads (as node's threadpool).
 *
 *   cc -O2 -pthread -o /tmp/mincore-cost bench/native/mincore-cost.c
 *   head -c 4400000 /dev/urandom > /tmp/f && /tmp/mincore-cost /tmp/f 4
 *
 * Prints µs per check for both (docs/bench.md, "Who pays for a loopback send").
 */
#define _GNU_SOURCE
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

static double now_ns(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return t.tv_sec * 1e9 + t.tv_nsec;
}

static void *idle(void *arg) {
  (void)arg;
  for (;;) pause();
  return NULL;
}

int main(int argc, char **argv) {
  if (argc < 3) {
    fprintf(stderr, "usage: mincore-cost FILE THREADS\n");
    return 2;
  }
  int threads = atoi(argv[2]);
  for (int i = 0; i < threads; i++) {
    pthread_t t;
    pthread_create(&t, NULL, idle, NULL);
  }
  int fd = open(argv[1], O_RDONLY);
  if (fd < 0) return perror("open"), 1;
  off_t size = lseek(fd, 0, SEEK_END);
  char buf[4096];
  for (off_t o = 0; o < size; o += sizeof buf)
    if (pread(fd, buf, sizeof buf, o) < 0) return perror("pread"), 1;
  size_t len = 512 * 1024;
  if ((off_t)len > size) return fprintf(stderr, "file under 512 KiB\n"), 2;
  unsigned char vec[128];
  const int n = 20000;
  double t0 = now_ns();
  for (int i = 0; i < n; i++) {
    void *m = mmap(NULL, len, PROT_READ, MAP_SHARED, fd, 0);
    mincore(m, len, vec);
    munmap(m, len);
  }
  double t1 = now_ns();
  void *kept = mmap(NULL, (size_t)size, PROT_READ, MAP_SHARED, fd, 0);
  for (int i = 0; i < n; i++) mincore(kept, len, vec);
  double t2 = now_ns();
  printf("threads %d: mmap+mincore+munmap %.2f us, mincore on a kept mapping %.2f us\n", threads,
         (t1 - t0) / n / 1000, (t2 - t1) / n / 1000);
  return 0;
}
