/* bench/net/uv_echo.c: the libuv baseline for the echo benchmark, a plain
 * libuv echo server as libuv's own examples write it.
 *
 *   uv_echo PORT [--malloc-default]
 *
 * Listens on 127.0.0.1:PORT, prints "listening on 127.0.0.1:PORT" when ready
 * and exits on SIGINT or SIGTERM. Reads go into one 256 KiB buffer (the
 * size our echo_server and uvloop read with) handed out by the alloc
 * callback; each read is copied into a fresh write request for uv_write
 * (which tries the write at once), freed when the write is done.
 *
 * One change from the textbook: glibc's malloc is told to keep what it has
 * (M_TRIM_THRESHOLD, M_MMAP_THRESHOLD). With its defaults, reads of 10 KiB
 * and more make it give the heap top back and fault it in again on every
 * few writes, and that, not libuv, then costs 2-3x the CPU per message at
 * 100 KiB; the benchmark compares against libuv, not against that.
 * `uv_echo PORT --malloc-default` leaves malloc alone.
 *
 *   cc -O2 -o uv_echo uv_echo.c -luv
 */
#define _GNU_SOURCE  /* uv.h needs pthread_rwlock_t */
#include <malloc.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>

#define BUF_SIZE (256 * 1024)

typedef struct {
    uv_write_t req;
    uv_buf_t buf;
    char data[];
} write_req_t;

static uv_loop_t *loop;
static uv_tcp_t server;
static uv_signal_t sigint_h, sigterm_h;
static char read_buf[BUF_SIZE];

static void on_close(uv_handle_t *h)
{
    free(h);
}

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
    (void)h;
    (void)suggested;
    *buf = uv_buf_init(read_buf, sizeof read_buf);
}

static void on_write(uv_write_t *req, int status)
{
    (void)status;  /* an error shows up as a read error too */
    free(req);
}

static void on_read(uv_stream_t *stream, ssize_t nread, const uv_buf_t *buf)
{
    if (nread > 0) {
        write_req_t *w = malloc(sizeof *w + (size_t)nread);
        if (!w) {
            uv_close((uv_handle_t *)stream, on_close);
            return;
        }
        memcpy(w->data, buf->base, (size_t)nread);
        w->buf = uv_buf_init(w->data, (unsigned int)nread);
        if (uv_write(&w->req, stream, &w->buf, 1, on_write) < 0) {
            free(w);
            uv_close((uv_handle_t *)stream, on_close);
        }
    } else if (nread < 0) {
        uv_close((uv_handle_t *)stream, on_close);
    }
}

static void on_connection(uv_stream_t *srv, int status)
{
    if (status < 0)
        return;
    uv_tcp_t *client = malloc(sizeof *client);
    if (!client)
        return;
    uv_tcp_init(loop, client);
    if (uv_accept(srv, (uv_stream_t *)client) == 0) {
        uv_tcp_nodelay(client, 1);
        uv_read_start((uv_stream_t *)client, on_alloc, on_read);
    } else {
        uv_close((uv_handle_t *)client, on_close);
    }
}

static void on_signal(uv_signal_t *h, int signum)
{
    (void)h;
    (void)signum;
    uv_stop(loop);
}

int main(int argc, char **argv)
{
    if (argc < 2 || argc > 3 || (argc == 3 && strcmp(argv[2], "--malloc-default") != 0)) {
        fprintf(stderr, "usage: %s PORT [--malloc-default]\n", argv[0]);
        return 2;
    }
    int port = atoi(argv[1]);
    if (argc == 2) {
        mallopt(M_MMAP_THRESHOLD, 32 << 20);
        mallopt(M_TRIM_THRESHOLD, 64 << 20);
    }
    signal(SIGPIPE, SIG_IGN);  /* a peer gone mid-write is a write error */
    loop = uv_default_loop();
    struct sockaddr_in addr;
    uv_ip4_addr("127.0.0.1", port, &addr);
    uv_tcp_init(loop, &server);
    int rc = uv_tcp_bind(&server, (const struct sockaddr *)&addr, 0);
    if (rc == 0)
        rc = uv_listen((uv_stream_t *)&server, 4096, on_connection);
    if (rc < 0) {
        fprintf(stderr, "uv_echo: %s\n", uv_strerror(rc));
        return 1;
    }
    uv_signal_init(loop, &sigint_h);
    uv_signal_start(&sigint_h, on_signal, SIGINT);
    uv_signal_init(loop, &sigterm_h);
    uv_signal_start(&sigterm_h, on_signal, SIGTERM);
    printf("listening on 127.0.0.1:%d\n", port);
    fflush(stdout);
    uv_run(loop, UV_RUN_DEFAULT);
    return 0;
}
