/*
 * sendfile(2) for the edge's large disk hits (edge/http/send-file.ts): the kernel moves a file's
 * page-cache pages to a socket without copying them through the process, as nginx does. Node
 * has no sendfile; no maintained npm package offers one, so this is the whole of it.
 *
 * Node-API only (node_api.h, ABI-stable): one binary for Node 20 and 24. Built by
 * scripts/build-native.sh; without a C compiler the edge sends from a buffer as before.
 *
 *   dup(fd) -> fd                    a private reference to a socket (close-on-exec), so a
 *                                    socket Node closes while a send is on the threadpool
 *                                    cannot be replaced under it by a new one with the same
 *                                    number, nor leak into a process forked meanwhile
 *   close(fd)
 *   send(out, in, offset, count, cb) on the threadpool: sendfile until `count` bytes are sent,
 *                                    the socket is full (EAGAIN) or an error;
 *                                    cb(errno, sent): errno 0, EAGAIN or the failure's
 *   sendNow(out, in, offset, count)  on the calling (event-loop) thread, and only when every page
 *     -> sent or -errno              of the range is in the page cache and up to date (mincore(2)
 *                                    on a mapping of the range, which counts a page still being
 *                                    read in as absent; cachestat(2) counts it present): sendfile
 *                                    then moves page references, with no disk read to wait for.
 *                                    Bytes sent (> 0) until `count`, or the socket is full;
 *                                    -EAGAIN: full before any byte; -ENODATA: a page is not
 *                                    resident, nothing sent (send it on the threadpool); -ENOSYS:
 *                                    the file cannot be mapped (no residency check); else -errno
 *   sendNow(out, in, offset, count, map)  the same, checking residency on `map` (from map(in, size)),
 *                                    a mapping kept while the file is open: no mmap and munmap
 *                                    per send (an munmap in a process with threads may interrupt
 *                                    every other CPU to flush its TLB)
 *   map(fd, size) -> map or -errno   a read-only mapping of the whole file, never touched, for
 *                                    residency checks; unmapped by unmap(map), or when collected
 *   unmap(map)
 */
#define NAPI_VERSION 8
#include <errno.h>
#include <fcntl.h>
#include <node_api.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/sendfile.h>
#include <sys/mman.h>
#include <unistd.h>


typedef struct {
  napi_async_work work;
  napi_ref cb;
  int out;
  int in;
  int64_t offset;
  int64_t count;
  int64_t sent;
  int err;
} job_t;

#define CHECK(call)                                                                           \
  do {                                                                                        \
    if ((call) != napi_ok) {                                                                  \
      napi_throw_error(env, "CDN_ERR_INTERNAL", "sendfile addon: " #call);                    \
      return NULL;                                                                            \
    }                                                                                         \
  } while (0)

static void execute(napi_env env, void *data) {
  (void)env;
  job_t *j = data;
  off_t off = (off_t)j->offset;
  while (j->sent < j->count) {
    size_t want = (size_t)(j->count - j->sent);
    if (want > 0x7ffff000) want = 0x7ffff000;
    ssize_t n = sendfile(j->out, j->in, &off, want);
    if (n > 0) {
      j->sent += n;
      continue;
    }
    if (n < 0 && errno == EINTR) continue;
    /* n == 0: the file is shorter than asked (truncated under us): a failure, not a stop. */
    j->err = n == 0 ? EIO : errno;
    return;
  }
}

static void complete(napi_env env, napi_status status, void *data) {
  job_t *j = data;
  napi_value cb, global, argv[2];
  napi_get_reference_value(env, j->cb, &cb);
  napi_get_global(env, &global);
  napi_create_int32(env, status == napi_ok ? j->err : ECANCELED, &argv[0]);
  napi_create_int64(env, j->sent, &argv[1]);
  napi_delete_reference(env, j->cb);
  napi_delete_async_work(env, j->work);
  free(j);
  napi_call_function(env, global, cb, 2, argv, NULL);
}

static napi_value send_file(napi_env env, napi_callback_info info) {
  size_t argc = 5;
  napi_value argv[5];
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  if (argc < 5) {
    napi_throw_type_error(env, "CDN_ERR_INTERNAL", "send(out, in, offset, count, cb)");
    return NULL;
  }
  job_t *j = calloc(1, sizeof(job_t));
  if (!j) {
    napi_throw_error(env, "CDN_ERR_INTERNAL", "out of memory");
    return NULL;
  }
  napi_get_value_int32(env, argv[0], &j->out);
  napi_get_value_int32(env, argv[1], &j->in);
  napi_get_value_int64(env, argv[2], &j->offset);
  napi_get_value_int64(env, argv[3], &j->count);
  napi_value name;
  napi_create_string_utf8(env, "cdn.sendfile", NAPI_AUTO_LENGTH, &name);
  if (napi_create_reference(env, argv[4], 1, &j->cb) != napi_ok) {
    free(j);
    napi_throw_error(env, "CDN_ERR_INTERNAL", "sendfile addon: could not keep the callback");
    return NULL;
  }
  if (napi_create_async_work(env, NULL, name, execute, complete, j, &j->work) != napi_ok) {
    napi_delete_reference(env, j->cb);
    free(j);
    napi_throw_error(env, "CDN_ERR_INTERNAL", "sendfile addon: could not create the work");
    return NULL;
  }
  if (napi_queue_async_work(env, j->work) != napi_ok) {
    napi_delete_async_work(env, j->work);
    napi_delete_reference(env, j->cb);
    free(j);
    napi_throw_error(env, "CDN_ERR_INTERNAL", "sendfile addon: could not queue the work");
    return NULL;
  }
  return NULL;
}

/* A kept mapping of a whole file (map/unmap), for residency checks only: never read through. */
typedef struct {
  void *addr;
  size_t len;
} map_t;

static long page_size(void) {
  static long page = 0;
  if (page == 0) page = sysconf(_SC_PAGESIZE);
  return page;
}

/* mincore over [addr, addr + len) (page-aligned addr): 1 every page resident, 0 not, -errno. */
static int all_resident(void *addr, size_t len) {
  long page = page_size();
  size_t pages = (len + (size_t)page - 1) / (size_t)page;
  unsigned char small[256];
  unsigned char *vec = pages <= sizeof small ? small : malloc(pages);
  if (!vec) return -ENOMEM;
  int r = mincore(addr, len, vec) != 0 ? -errno : 1;
  for (size_t i = 0; r == 1 && i < pages; i++)
    if (!(vec[i] & 1)) r = 0;
  if (vec != small) free(vec);
  return r;
}

/*
 * Is every page of [offset, offset + count) of `fd` in the page cache and up to date? 1 yes, 0 no,
 * -errno. mincore(2) on a mapping of the range (`kept`, or one made for this check): the mapping
 * is never touched (no page faults), and mincore reports a page whose read is still in flight
 * (readahead) as absent.
 */
static int resident(int fd, int64_t offset, int64_t count, const map_t *kept) {
  long page = page_size();
  int64_t start = offset - offset % page;
  size_t len = (size_t)(offset + count - start);
  /* A kept mapping that no longer covers the range (unmapped, or shorter) is not used. */
  if (kept && kept->addr != NULL && offset + count <= (int64_t)kept->len)
    return all_resident((char *)kept->addr + start, len);
  void *map = mmap(NULL, len, PROT_READ, MAP_SHARED, fd, (off_t)start);
  if (map == MAP_FAILED) return -errno;
  int r = all_resident(map, len);
  munmap(map, len);
  return r;
}

static void map_finalize(napi_env env, void *data, void *hint) {
  (void)env;
  (void)hint;
  map_t *m = data;
  if (m->addr) munmap(m->addr, m->len);
  free(m);
}

static napi_value map_file(napi_env env, napi_callback_info info) {
  size_t argc = 2;
  napi_value argv[2], result;
  int fd;
  int64_t size;
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  if (argc < 2) {
    napi_throw_type_error(env, "CDN_ERR_INTERNAL", "map(fd, size)");
    return NULL;
  }
  CHECK(napi_get_value_int32(env, argv[0], &fd));
  CHECK(napi_get_value_int64(env, argv[1], &size));
  if (size <= 0) {
    CHECK(napi_create_int32(env, -EINVAL, &result));
    return result;
  }
  void *addr = mmap(NULL, (size_t)size, PROT_READ, MAP_SHARED, fd, 0);
  if (addr == MAP_FAILED) {
    CHECK(napi_create_int32(env, -errno, &result));
    return result;
  }
  map_t *m = malloc(sizeof *m);
  if (!m) {
    munmap(addr, (size_t)size);
    CHECK(napi_create_int32(env, -ENOMEM, &result));
    return result;
  }
  m->addr = addr;
  m->len = (size_t)size;
  if (napi_create_external(env, m, map_finalize, NULL, &result) != napi_ok) {
    map_finalize(env, m, NULL);
    napi_throw_error(env, "CDN_ERR_INTERNAL", "sendfile addon: could not wrap the mapping");
    return NULL;
  }
  return result;
}

/* The map_t behind `value`, or NULL when it is not one (undefined: no kept mapping). */
static map_t *map_of(napi_env env, napi_value value) {
  napi_valuetype type;
  void *data = NULL;
  if (napi_typeof(env, value, &type) != napi_ok || type != napi_external) return NULL;
  if (napi_get_value_external(env, value, &data) != napi_ok) return NULL;
  return data;
}

static napi_value unmap_file(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value arg;
  CHECK(napi_get_cb_info(env, info, &argc, &arg, NULL, NULL));
  map_t *m = argc < 1 ? NULL : map_of(env, arg);
  if (m && m->addr) {
    munmap(m->addr, m->len);
    m->addr = NULL;
  }
  return NULL;
}

static napi_value send_now(napi_env env, napi_callback_info info) {
  size_t argc = 5;
  napi_value argv[5], result;
  int out, in;
  int64_t offset, count, sent = 0;
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  if (argc < 4) {
    napi_throw_type_error(env, "CDN_ERR_INTERNAL", "sendNow(out, in, offset, count)");
    return NULL;
  }
  CHECK(napi_get_value_int32(env, argv[0], &out));
  CHECK(napi_get_value_int32(env, argv[1], &in));
  CHECK(napi_get_value_int64(env, argv[2], &offset));
  CHECK(napi_get_value_int64(env, argv[3], &count));
  const map_t *kept = argc >= 5 ? map_of(env, argv[4]) : NULL;
  int r = count > 0 ? resident(in, offset, count, kept) : 1;
  if (r < 0) {
    /* The file cannot be mapped (a file system without mmap, say): no residency check, -ENOSYS,
       and the caller stops asking for this tier. Out of memory: send it on the threadpool. A bad
       descriptor is the caller's failure. */
    CHECK(napi_create_int64(env, r == -EBADF ? r : r == -ENOMEM || r == -EAGAIN ? -ENODATA : -ENOSYS, &result));
    return result;
  }
  if (r == 0) {
    CHECK(napi_create_int64(env, -ENODATA, &result));
    return result;
  }
  off_t off = (off_t)offset;
  int err = 0;
  while (sent < count) {
    size_t want = (size_t)(count - sent);
    if (want > 0x7ffff000) want = 0x7ffff000;
    ssize_t n = sendfile(out, in, &off, want);
    if (n > 0) {
      sent += n;
      continue;
    }
    if (n < 0 && errno == EINTR) continue;
    err = n == 0 ? EIO : errno;
    break;
  }
  CHECK(napi_create_int64(env, sent > 0 ? sent : err ? -err : 0, &result));
  return result;
}

static napi_value dup_fd(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value arg, out;
  int fd;
  CHECK(napi_get_cb_info(env, info, &argc, &arg, NULL, NULL));
  CHECK(napi_get_value_int32(env, arg, &fd));
  int copy = fcntl(fd, F_DUPFD_CLOEXEC, 0);
  CHECK(napi_create_int32(env, copy < 0 ? -errno : copy, &out));
  return out;
}

static napi_value close_fd(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value arg;
  int fd;
  CHECK(napi_get_cb_info(env, info, &argc, &arg, NULL, NULL));
  CHECK(napi_get_value_int32(env, arg, &fd));
  close(fd);
  return NULL;
}

static napi_value init(napi_env env, napi_value exports) {
  napi_property_descriptor props[] = {
      {"send", NULL, send_file, NULL, NULL, NULL, napi_enumerable, NULL},
      {"dup", NULL, dup_fd, NULL, NULL, NULL, napi_enumerable, NULL},
      {"close", NULL, close_fd, NULL, NULL, NULL, napi_enumerable, NULL},
      {"sendNow", NULL, send_now, NULL, NULL, NULL, napi_enumerable, NULL},
      {"map", NULL, map_file, NULL, NULL, NULL, napi_enumerable, NULL},
      {"unmap", NULL, unmap_file, NULL, NULL, NULL, napi_enumerable, NULL},
  };
  napi_value eagain, enodata, enosys;
  CHECK(napi_define_properties(env, exports, 6, props));
  CHECK(napi_create_int32(env, EAGAIN, &eagain));
  CHECK(napi_set_named_property(env, exports, "EAGAIN", eagain));
  CHECK(napi_create_int32(env, ENODATA, &enodata));
  CHECK(napi_set_named_property(env, exports, "ENODATA", enodata));
  CHECK(napi_create_int32(env, ENOSYS, &enosys));
  CHECK(napi_set_named_property(env, exports, "ENOSYS", enosys));
  return exports;
}

NAPI_MODULE_INIT() { return init(env, exports); }
