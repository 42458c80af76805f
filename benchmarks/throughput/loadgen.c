/*
 * loadgen: a closed-loop load generator for the "esrt" binary conversation (esrt/wire.py).
 *
 *   loadgen HOST PORT CONNECTIONS SECONDS FRAME_FILE
 *
 * Opens CONNECTIONS TCP connections and keeps exactly one request outstanding on each: when a
 * reply arrives, the next request goes out at once. FRAME_FILE holds one or more whole request
 * frames back to back (length prefix included, as esrt.wire.encode_request makes them): the
 * requests take them in turn, so a service can be called with many different parameters (many
 * records). Each send gets a fresh request id written into its frame, and the reply must carry
 * that id back. After SECONDS no new
 * request is sent and the outstanding ones are waited for (up to DRAIN_SECONDS), so every
 * request that reached the server is counted: a caller can compare the count with what the
 * server did. Prints one JSON object on stdout: requests (replies with status 200), errors
 * (any other status, a wrong id, a lost connection), elapsed_s, rps and latency percentiles.
 *
 * One thread and epoll: it has to stay cheaper than the server it measures, so no allocation
 * happens per request and latencies go into a fixed histogram (1 us buckets up to
 * FINE_LIMIT_US, 1 ms buckets above).
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define FINE_LIMIT_US (1u << 20)      /* ~1 s at 1 us resolution */
#define COARSE_BUCKETS 600000u         /* then up to 600 s at 1 ms resolution */
#define DRAIN_SECONDS 30.0
#define READ_CHUNK 65536
#define MAX_REPLY (16u * 1024u * 1024u)
/* Reply layout after the 4-byte length: magic, version, kind, u64 id, u16 status, i32 rc. */
#define REPLY_HEAD 17
#define ID_OFFSET 7                    /* request id: after length(4) magic version kind */

struct conn {
    int fd;
    int open;
    uint64_t next_id;
    uint64_t waiting_id;
    int outstanding;
    double sent_at;
    unsigned char *in;
    size_t in_len;
    size_t in_cap;
};

static uint64_t fine[FINE_LIMIT_US];
static uint64_t coarse[COARSE_BUCKETS];
static uint64_t ok_count, err_status, err_id, err_conn;
static double latency_sum_us, latency_max_us;

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void die(const char *what, const char *detail)
{
    fprintf(stderr, "loadgen: %s: %s\n", what, detail);
    exit(2);
}

static void record(double seconds)
{
    double us = seconds * 1e6;
    if (us < 0)
        us = 0;
    latency_sum_us += us;
    if (us > latency_max_us)
        latency_max_us = us;
    if (us < FINE_LIMIT_US) {
        fine[(size_t)us]++;
    } else {
        size_t ms = (size_t)(us / 1000.0);
        coarse[ms < COARSE_BUCKETS ? ms : COARSE_BUCKETS - 1]++;
    }
}

/* Nearest-rank percentile in milliseconds (the upper edge of the bucket it falls in). */
static double percentile_ms(double q)
{
    uint64_t total = ok_count, rank, seen = 0;
    if (total == 0)
        return -1.0;
    rank = (uint64_t)((q / 100.0) * (double)total + 0.999999);
    if (rank < 1)
        rank = 1;
    for (size_t i = 0; i < FINE_LIMIT_US; i++) {
        seen += fine[i];
        if (seen >= rank)
            return (double)(i + 1) / 1000.0;
    }
    for (size_t i = 0; i < COARSE_BUCKETS; i++) {
        seen += coarse[i];
        if (seen >= rank)
            return (double)(i + 1);
    }
    return latency_max_us / 1000.0;
}

#define MIN_FRAME (4 + 11 + 2)
#define MAX_FRAMES 65536

static unsigned char *frames;
static size_t frame_at[MAX_FRAMES], frame_len[MAX_FRAMES];
static size_t nframes, next_frame;

static uint32_t get_u32(const unsigned char *at)
{
    return ((uint32_t)at[0] << 24) | ((uint32_t)at[1] << 16) | ((uint32_t)at[2] << 8) | at[3];
}

static void load_frames(const char *path)
{
    FILE *f = fopen(path, "rb");
    long size;
    size_t at = 0;
    if (!f)
        die(path, strerror(errno));
    fseek(f, 0, SEEK_END);
    size = ftell(f);
    fseek(f, 0, SEEK_SET);
    if (size < MIN_FRAME)
        die(path, "too short to be a request frame (make it with esrt.wire.encode_request)");
    frames = malloc((size_t)size);
    if (!frames || fread(frames, 1, (size_t)size, f) != (size_t)size)
        die(path, "cannot read the request frames");
    fclose(f);
    while (at < (size_t)size) {
        size_t length;
        if ((size_t)size - at < 4)
            die(path, "ends with a partial request frame (make each with "
                      "esrt.wire.encode_request)");
        length = 4 + (size_t)get_u32(frames + at);
        if (length < MIN_FRAME || at + length > (size_t)size)
            die(path, "holds something that is not a whole request frame (make each with "
                      "esrt.wire.encode_request)");
        if (nframes == MAX_FRAMES)
            die(path, "holds more than 65536 frames");
        frame_at[nframes] = at;
        frame_len[nframes++] = length;
        at += length;
    }
}

static void put_u64(unsigned char *at, uint64_t value)
{
    for (int i = 7; i >= 0; i--) {
        at[i] = (unsigned char)(value & 0xff);
        value >>= 8;
    }
}

static uint64_t get_u64(const unsigned char *at)
{
    uint64_t value = 0;
    for (int i = 0; i < 8; i++)
        value = (value << 8) | at[i];
    return value;
}

static void close_conn(int epfd, struct conn *c)
{
    if (!c->open)
        return;
    epoll_ctl(epfd, EPOLL_CTL_DEL, c->fd, NULL);
    close(c->fd);
    c->open = 0;
    if (c->outstanding)
        err_conn++;
    c->outstanding = 0;
}

/* Send the next request whole; the frames are small, so a blocking-style loop suffices. */
static int send_request(struct conn *c)
{
    size_t done = 0, which = next_frame++ % nframes;
    unsigned char *frame = frames + frame_at[which];
    size_t length = frame_len[which];
    c->waiting_id = c->next_id++;
    put_u64(frame + ID_OFFSET, c->waiting_id);
    c->sent_at = now_s();
    while (done < length) {
        ssize_t n = send(c->fd, frame + done, length - done, MSG_NOSIGNAL);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            if (errno == EAGAIN) {
                struct timespec pause = {0, 10000};
                nanosleep(&pause, NULL);
                continue;
            }
            return -1;
        }
        done += (size_t)n;
    }
    c->outstanding = 1;
    return 0;
}

/* Consume whole replies from c->in; return how many arrived (0 or 1 in a closed loop). */
static int take_replies(struct conn *c, int *fatal)
{
    int replies = 0;
    size_t at = 0;
    while (c->in_len - at >= 4) {
        uint32_t size = ((uint32_t)c->in[at] << 24) | ((uint32_t)c->in[at + 1] << 16) |
                        ((uint32_t)c->in[at + 2] << 8) | c->in[at + 3];
        if (size > MAX_REPLY || size < REPLY_HEAD) {
            *fatal = 1;
            break;
        }
        if (c->in_len - at < 4 + (size_t)size)
            break;
        {
            const unsigned char *p = c->in + at + 4;
            uint64_t id = get_u64(p + 3);
            unsigned status = ((unsigned)p[11] << 8) | p[12];
            if (!c->outstanding || id != c->waiting_id)
                err_id++;
            else if (status != 200)
                err_status++;
            else {
                ok_count++;
                record(now_s() - c->sent_at);
            }
            c->outstanding = 0;
            replies++;
        }
        at += 4 + (size_t)size;
    }
    if (at) {
        memmove(c->in, c->in + at, c->in_len - at);
        c->in_len -= at;
    }
    return replies;
}

static int open_conn(struct conn *c, const struct addrinfo *addr, int epfd)
{
    int one = 1;
    struct epoll_event ev;
    c->fd = socket(addr->ai_family, SOCK_STREAM, 0);
    if (c->fd < 0)
        return -1;
    if (connect(c->fd, addr->ai_addr, addr->ai_addrlen) < 0) {
        close(c->fd);
        return -1;
    }
    setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    fcntl(c->fd, F_SETFL, fcntl(c->fd, F_GETFL) | O_NONBLOCK);
    memset(&ev, 0, sizeof ev);
    ev.events = EPOLLIN;
    ev.data.ptr = c;
    if (epoll_ctl(epfd, EPOLL_CTL_ADD, c->fd, &ev) < 0) {
        close(c->fd);
        return -1;
    }
    c->open = 1;
    return 0;
}

int main(int argc, char **argv)
{
    struct addrinfo hints, *addr;
    struct epoll_event events[256];
    struct conn *conns;
    int nconns, epfd, open_count = 0, rc;
    double seconds, started, deadline, drain_until, ended;

    if (argc != 6) {
        fprintf(stderr, "usage: loadgen HOST PORT CONNECTIONS SECONDS FRAME_FILE\n");
        return 2;
    }
    nconns = atoi(argv[3]);
    seconds = atof(argv[4]);
    if (nconns < 1 || nconns > 10000)
        die(argv[3], "CONNECTIONS must be a whole number from 1 to 10000");
    if (!(seconds > 0))
        die(argv[4], "SECONDS must be a number above 0");
    load_frames(argv[5]);
    memset(&hints, 0, sizeof hints);
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    rc = getaddrinfo(argv[1], argv[2], &hints, &addr);
    if (rc != 0)
        die(argv[1], gai_strerror(rc));
    epfd = epoll_create1(0);
    conns = calloc((size_t)nconns, sizeof *conns);
    if (epfd < 0 || !conns)
        die("setup", strerror(errno));
    for (int i = 0; i < nconns; i++) {
        conns[i].next_id = 1;
        conns[i].in_cap = READ_CHUNK * 2;
        conns[i].in = malloc(conns[i].in_cap);
        if (!conns[i].in)
            die("setup", "out of memory");
        if (open_conn(&conns[i], addr, epfd) < 0) {
            fprintf(stderr, "loadgen: cannot connect to %s:%s: %s; is the server listening?\n",
                    argv[1], argv[2], strerror(errno));
            return 2;
        }
        open_count++;
    }
    started = now_s();
    deadline = started + seconds;
    drain_until = deadline + DRAIN_SECONDS;
    for (int i = 0; i < nconns; i++)
        if (send_request(&conns[i]) < 0)
            close_conn(epfd, &conns[i]), open_count--;
    ended = started;
    for (;;) {
        double now = now_s();
        int waiting = 0, n;
        for (int i = 0; i < nconns; i++)
            waiting += conns[i].outstanding;
        if (now >= deadline && waiting == 0)
            break;
        if (now >= drain_until || open_count == 0)
            break;
        n = epoll_wait(epfd, events, 256, 50);
        if (n < 0 && errno != EINTR)
            die("epoll_wait", strerror(errno));
        for (int e = 0; e < n; e++) {
            struct conn *c = events[e].data.ptr;
            int fatal = 0;
            for (;;) {
                ssize_t got;
                if (c->in_cap - c->in_len < READ_CHUNK) {
                    c->in_cap *= 2;
                    c->in = realloc(c->in, c->in_cap);
                    if (!c->in)
                        die("read", "out of memory");
                }
                got = recv(c->fd, c->in + c->in_len, c->in_cap - c->in_len, 0);
                if (got > 0) {
                    c->in_len += (size_t)got;
                    continue;
                }
                if (got == 0 || (errno != EAGAIN && errno != EINTR))
                    fatal = 1;
                break;
            }
            if (take_replies(c, &fatal) > 0) {
                ended = now_s();
                if (!fatal && ended < deadline && send_request(c) < 0)
                    fatal = 1;
            }
            if (fatal) {
                close_conn(epfd, c);
                open_count--;
            }
        }
    }
    for (int i = 0; i < nconns; i++) {
        if (conns[i].outstanding)
            err_conn++;  /* no reply within the drain time */
        if (conns[i].open)
            close(conns[i].fd);
    }
    {
        double elapsed = ended > started ? ended - started : seconds;
        uint64_t errors = err_status + err_id + err_conn;
        printf("{\"connections\": %d, \"requests\": %llu, \"errors\": %llu, "
               "\"errors_by_kind\": {\"status\": %llu, \"wrong_id\": %llu, \"connection\": %llu}, "
               "\"elapsed_s\": %.6f, \"rps\": %.1f, \"p50_ms\": %.3f, \"p99_ms\": %.3f, "
               "\"max_ms\": %.3f, \"mean_ms\": %.3f}\n",
               nconns, (unsigned long long)ok_count, (unsigned long long)errors,
               (unsigned long long)err_status, (unsigned long long)err_id,
               (unsigned long long)err_conn, elapsed, (double)ok_count / elapsed,
               percentile_ms(50), percentile_ms(99), latency_max_us / 1000.0,
               ok_count ? latency_sum_us / (double)ok_count / 1000.0 : 0.0);
    }
    freeaddrinfo(addr);
    return 0;
}
