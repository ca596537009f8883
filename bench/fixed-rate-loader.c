/*
 * Open-loop HTTP/1.1 load at a fixed rate, for bench/authorize.ts's fixed-rate rows (the p99 target).
 *
 * Why C: the load generator shares the machine's two cores with the server it measures. The same loop in
 * Node (kept until 2026-11) cost about half a core at 18k req/s and stalled for 3-30 ms dozens of times a run
 * (its own GC and JIT, and being descheduled while it held a core): responses sat unread in its sockets, and
 * even a bare node:http hello-world measured a p99 of 4-30 ms. This one costs a few percent of a core and
 * allocates nothing while it runs.
 *
 * What it does: every millisecond (timerfd), the requests due by then are issued, round robin over
 * `connections` keep-alive connections with one request in flight each (a request due on a busy connection
 * waits for it, and that wait counts). Latency runs from the moment a request was due to the last byte of its
 * response. Nothing is timed against wall-clock: CLOCK_MONOTONIC throughout.
 *
 * Usage: fixed-rate-loader <port> <rate> <seconds> <connections> <request file> <expect> <drain ms>
 *   request file: the request's exact bytes (sent as they are, every time); several requests separated by a
 *     NUL byte are sent in turn (the k-th request issued is request k mod n);
 *   expect: a body without this text counts as a mismatch, not a latency.
 * Prints, one per line: `sent N`, `settled N` (responses read), `good_in_window N` (good responses read
 * before the window closed), `non2xx N`, `mismatches N`, `errors N` (requests lost with their connection),
 * `late_ticks N` and `late_ms X` (the loader's own late wake-ups, over 2 ms), `hist i:c …` (latency
 * histogram: bucket i holds [i, i+1) x 10 µs, the last one everything above), `refusal <body>` (the first
 * mismatching body, at most 300 bytes, line breaks replaced).
 * Exit status 2 on bad arguments or a failed connect; the message is on stderr.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/timerfd.h>
#include <time.h>
#include <unistd.h>
#include <arpa/inet.h>

#define BUCKETS 100000 /* 10 µs each: 1 s, the histogram's range in bench/authorize.ts */
#define READ_BUFFER (256 * 1024)
#define LATE_TICK_NS 2000000L

typedef struct {
  int fd;
  int open;
  double *due;  /* when each of its requests was due, in order; [head, tail) still unanswered */
  int *which;   /* which of the requests each one is, in the same order */
  long head, tail;
  size_t written; /* bytes of the request at `head` already written (a partial write waits for EPOLLOUT) */
  int writing;    /* the request at `head` is not fully written yet */
  char *buf;
  size_t len;
} Conn;

static uint32_t hist[BUCKETS];
#define MAX_REQUESTS 4096
static const char *requests[MAX_REQUESTS];
static size_t request_lens[MAX_REQUESTS];
static int nrequests;
static const char *expect;
static long sent, settled, good_in_window, non2xx, mismatches, errors, late_ticks;
static double late_ms;
static char refusal[301];
static int have_refusal;

static int fcntl_nonblock(int fd) {
  int flags = fcntl(fd, F_GETFL, 0);
  return flags < 0 ? -1 : fcntl(fd, F_SETFL, flags | O_NONBLOCK) < 0 ? -1 : 0;
}

static double now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

static void die(const char *what) {
  fprintf(stderr, "fixed-rate-loader: %s: %s\n", what, strerror(errno));
  exit(2);
}

static void lose(Conn *c) {
  if (!c->open) {
    return;
  }
  c->open = 0;
  errors += c->tail - c->head;
  c->head = c->tail;
  close(c->fd);
}

/* Writes what is left of the request at the head of the queue; 0 when it is all written. */
static int write_head(Conn *c, int ep) {
  const char *request = requests[c->which[c->head]];
  size_t request_len = request_lens[c->which[c->head]];
  while (c->written < request_len) {
    ssize_t n = write(c->fd, request + c->written, request_len - c->written);
    if (n < 0) {
      if (errno == EAGAIN) {
        struct epoll_event ev = {.events = EPOLLIN | EPOLLOUT, .data.ptr = c};
        epoll_ctl(ep, EPOLL_CTL_MOD, c->fd, &ev);
        c->writing = 1;
        return 1;
      }
      lose(c);
      return 1;
    }
    c->written += (size_t)n;
  }
  if (c->writing) {
    struct epoll_event ev = {.events = EPOLLIN, .data.ptr = c};
    epoll_ctl(ep, EPOLL_CTL_MOD, c->fd, &ev);
    c->writing = 0;
  }
  return 0;
}

static void send_next(Conn *c, int ep) {
  c->written = 0;
  write_head(c, ep);
}

static char decoded[READ_BUFFER];

/* The length of the chunked body at p (within n bytes), -1 while it is incomplete; its payload is copied to
 * `decoded` (*payload_len bytes), where the expect check reads it. */
static long chunked_length(const char *p, size_t n, size_t *payload_len) {
  size_t at = 0;
  *payload_len = 0;
  for (;;) {
    const char *line_end = memmem(p + at, n - at, "\r\n", 2);
    if (line_end == NULL) {
      return -1;
    }
    long size = strtol(p + at, NULL, 16);
    at = (size_t)(line_end - p) + 2;
    if (size <= 0) {
      /* No trailers: the last chunk is followed by an empty line. */
      return at + 2 <= n ? (long)(at + 2) : -1;
    }
    if (at + (size_t)size + 2 > n) {
      return -1;
    }
    memcpy(decoded + *payload_len, p + at, (size_t)size);
    *payload_len += (size_t)size;
    at += (size_t)size + 2;
  }
}

/* One complete response off the front of the buffer: its total length, or 0 while it is incomplete. */
static size_t parse_one(Conn *c, int *status, const char **body, size_t *body_len) {
  const char *end = memmem(c->buf, c->len, "\r\n\r\n", 4);
  if (end == NULL || c->len < 12) {
    return 0;
  }
  size_t head_len = (size_t)(end - c->buf) + 4;
  *status = atoi(c->buf + 9);
  *body = c->buf + head_len;
  const char *cl = NULL;
  int chunked = 0;
  for (const char *line = c->buf; line < end;) {
    const char *next = memmem(line, (size_t)(end - line) + 2, "\r\n", 2);
    if (next == NULL) {
      break;
    }
    if (strncasecmp(line, "content-length:", 15) == 0) {
      cl = line + 15;
    } else if (strncasecmp(line, "transfer-encoding:", 18) == 0 && memmem(line, (size_t)(next - line), "chunked", 7)) {
      chunked = 1;
    }
    line = next + 2;
  }
  if (chunked) {
    long n = chunked_length(*body, c->len - head_len, body_len);
    if (n < 0) {
      return 0;
    }
    *body = decoded;
    return head_len + (size_t)n;
  }
  /* Neither header: no body (a 204 or 304) as far as this loader is concerned. */
  *body_len = cl == NULL ? 0 : (size_t)strtoul(cl, NULL, 10);
  return c->len >= head_len + *body_len ? head_len + *body_len : 0;
}

static void on_readable(Conn *c, int ep, double window_end) {
  for (;;) {
    if (c->len == READ_BUFFER) {
      lose(c); /* a response larger than the buffer: not one this loader is for */
      return;
    }
    ssize_t n = read(c->fd, c->buf + c->len, READ_BUFFER - c->len);
    if (n == 0 || (n < 0 && errno != EAGAIN)) {
      lose(c);
      return;
    }
    if (n < 0) {
      return;
    }
    c->len += (size_t)n;
    double now = now_ms();
    int status;
    const char *body;
    size_t body_len;
    size_t used;
    while ((used = parse_one(c, &status, &body, &body_len)) > 0) {
      if (c->head == c->tail) {
        lose(c); /* a response nobody asked for */
        return;
      }
      double due = c->due[c->head++];
      settled++;
      if (status < 200 || status >= 300) {
        non2xx++;
      } else if (memmem(body, body_len, expect, strlen(expect)) == NULL) {
        mismatches++;
        if (!have_refusal) {
          have_refusal = 1;
          size_t k = body_len < 300 ? body_len : 300;
          memcpy(refusal, body, k);
          for (size_t i = 0; i < k; i++) {
            if (refusal[i] == '\n' || refusal[i] == '\r') {
              refusal[i] = ' ';
            }
          }
          refusal[k] = 0;
        }
      } else {
        double ms = now - due;
        long bucket = (long)(ms / 0.01);
        hist[bucket < 0 ? 0 : bucket >= BUCKETS ? BUCKETS - 1 : bucket]++;
        if (now <= window_end) {
          good_in_window++;
        }
      }
      memmove(c->buf, c->buf + used, c->len - used);
      c->len -= used;
      if (c->head < c->tail) {
        send_next(c, ep);
        if (!c->open) {
          return;
        }
      }
    }
  }
}

int main(int argc, char **argv) {
  if (argc != 8) {
    fprintf(stderr, "usage: fixed-rate-loader <port> <rate> <seconds> <connections> <request file> <expect> <drain ms>\n");
    return 2;
  }
  int port = atoi(argv[1]);
  double rate = atof(argv[2]);
  double seconds = atof(argv[3]);
  int nconn = atoi(argv[4]);
  expect = argv[6];
  double drain_ms = atof(argv[7]);
  if (port <= 0 || rate <= 0 || seconds <= 0 || nconn <= 0) {
    fprintf(stderr, "fixed-rate-loader: port, rate, seconds and connections must be positive\n");
    return 2;
  }
  FILE *f = fopen(argv[5], "rb");
  if (f == NULL) {
    die("request file");
  }
  static char request_buf[1 << 20];
  size_t file_len = fread(request_buf, 1, sizeof request_buf, f);
  fclose(f);
  if (file_len == 0 || file_len == sizeof request_buf) {
    fprintf(stderr, "fixed-rate-loader: the request file must hold 1 byte to 1 MiB\n");
    return 2;
  }
  for (size_t at = 0; at < file_len;) {
    const char *nul = memchr(request_buf + at, 0, file_len - at);
    size_t len = nul == NULL ? file_len - at : (size_t)(nul - (request_buf + at));
    if (len == 0 || nrequests == MAX_REQUESTS) {
      fprintf(stderr, "fixed-rate-loader: the request file must hold 1 to %d non-empty requests\n", MAX_REQUESTS);
      return 2;
    }
    requests[nrequests] = request_buf + at;
    request_lens[nrequests++] = len;
    at += len + 1;
  }

  long total = (long)(rate * seconds + 0.5);
  long per_conn = total / nconn + 1;
  int ep = epoll_create1(0);
  if (ep < 0) {
    die("epoll_create1");
  }
  Conn *conns = calloc((size_t)nconn, sizeof(Conn));
  struct sockaddr_in addr = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
  inet_pton(AF_INET, "127.0.0.1", &addr.sin_addr);
  for (int i = 0; i < nconn; i++) {
    Conn *c = &conns[i];
    c->fd = socket(AF_INET, SOCK_STREAM, 0);
    if (c->fd < 0 || connect(c->fd, (struct sockaddr *)&addr, sizeof addr) != 0) {
      die("connect");
    }
    int one = 1;
    setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    // Connected while blocking (simple); non-blocking from here on.
    if (fcntl_nonblock(c->fd) != 0) {
      die("fcntl");
    }
    c->open = 1;
    c->due = malloc((size_t)per_conn * sizeof(double));
    c->which = malloc((size_t)per_conn * sizeof(int));
    c->buf = malloc(READ_BUFFER);
    if (c->due == NULL || c->which == NULL || c->buf == NULL) {
      die("malloc");
    }
    struct epoll_event ev = {.events = EPOLLIN, .data.ptr = c};
    epoll_ctl(ep, EPOLL_CTL_ADD, c->fd, &ev);
  }
  int tfd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK);
  if (tfd < 0) {
    die("timerfd_create");
  }
  struct itimerspec tick = {.it_interval = {0, 1000000}, .it_value = {0, 1000000}};
  timerfd_settime(tfd, 0, &tick, NULL);
  struct epoll_event tev = {.events = EPOLLIN, .data.ptr = NULL};
  epoll_ctl(ep, EPOLL_CTL_ADD, tfd, &tev);

  double start = now_ms();
  double window_end = start + seconds * 1e3;
  double drain_end = -1;
  double last_wake = start;
  struct epoll_event events[64];
  for (;;) {
    int n = epoll_wait(ep, events, 64, 100);
    if (n < 0 && errno != EINTR) {
      die("epoll_wait");
    }
    double now = now_ms();
    if (sent < total && now - last_wake > LATE_TICK_NS / 1e6) {
      late_ticks++;
      late_ms += now - last_wake;
    }
    last_wake = now;
    for (int i = 0; i < n; i++) {
      Conn *c = events[i].data.ptr;
      if (c == NULL) {
        uint64_t expirations;
        (void)!read(tfd, &expirations, sizeof expirations);
        continue;
      }
      if (!c->open) {
        continue;
      }
      if ((events[i].events & EPOLLOUT) && c->writing) {
        write_head(c, ep);
      }
      if (c->open && (events[i].events & (EPOLLIN | EPOLLHUP | EPOLLERR))) {
        on_readable(c, ep, window_end);
      }
    }
    long due_now = now >= window_end ? total : (long)((now - start) / 1e3 * rate);
    if (due_now > total) {
      due_now = total;
    }
    while (sent < due_now) {
      Conn *c = &conns[sent % nconn];
      int which = (int)(sent % nrequests);
      sent++;
      if (!c->open) {
        errors++;
        continue;
      }
      // Issued now: a wake-up later than planned is the loader's delay, not the server's.
      c->which[c->tail] = which;
      c->due[c->tail++] = now;
      if (c->tail - c->head == 1) {
        send_next(c, ep);
      }
    }
    if (sent == total) {
      if (settled + errors >= sent) {
        break;
      }
      if (drain_end < 0) {
        drain_end = now + drain_ms;
      } else if (now >= drain_end) {
        break;
      }
    }
  }
  printf("sent %ld\nsettled %ld\ngood_in_window %ld\nnon2xx %ld\nmismatches %ld\nerrors %ld\n", sent, settled,
         good_in_window, non2xx, mismatches, errors);
  printf("late_ticks %ld\nlate_ms %.1f\nhist", late_ticks, late_ms);
  for (long i = 0; i < BUCKETS; i++) {
    if (hist[i] > 0) {
      printf(" %ld:%u", i, hist[i]);
    }
  }
  printf("\nrefusal %s\n", have_refusal ? refusal : "");
  return 0;
}
