/*
 * http_parse: the request-head parser of examples/http_server.c, on its own
 * so that the fuzz targets (tests/fuzz/) can link it. Pure functions over a
 * byte buffer: no loop, no I/O, no allocation.
 *
 * The buffer is the front of the connection's input (the stream's own
 * buffer, peeked): the caller drops the bytes the parser says it used and
 * calls again with what is left and what came since. The parser remembers
 * how far it has searched, so each byte is searched for the head's end once.
 *
 *     struct http_parser ps;
 *     http_parser_init(&ps);
 *     for (;;) {
 *         n = peek(&data);
 *         r = http_parse_head(&ps, data, n, limit, &rq, &used);
 *         consume(used);
 *         if (r == HTTP_PARSE_MORE) { read more; continue; }
 *         answer rq.status (0: serve rq.path), then go on if r is
 *         HTTP_PARSE_REQUEST and rq.keep_alive, else close.
 *     }
 */
#ifndef HTTP_PARSE_H
#define HTTP_PARSE_H

#include <stdbool.h>
#include <stddef.h>

#define HTTP_PATH_MAX 1024 /* a decoded path longer than this cannot name a file here */

/* What the answer to a request depends on, taken out of its head. */
struct http_request {
    int status;               /* 0: serve path (or "/"); else the status to answer */
    int minor;                /* HTTP/1.minor */
    bool head;                /* HEAD: the answer has no body */
    bool keep_alive;          /* the connection goes on after the answer */
    bool root;                /* the path is / */
    unsigned long long body;  /* Content-Length of the request: bytes to skip after it */
    char path[HTTP_PATH_MAX]; /* percent-decoded, without the leading '/' */
};

enum http_parse_result {
    /* No whole head yet: read more. used is the empty lines ("\r\n")
     * before the request, which the caller drops. */
    HTTP_PARSE_MORE,
    /* A whole head: used is its length (with the empty lines before it);
     * rq->status is 0 to serve rq->path, 404 (a ".." segment, a path too
     * long) or 405 (a method other than GET and HEAD) to answer instead;
     * the connection goes on if rq->keep_alive. */
    HTTP_PARSE_REQUEST,
    /* A protocol error: answer rq->status, 400 (a malformed head, or none
     * within limit bytes) or 501 (a Transfer-Encoding), then close the
     * connection (rq->keep_alive is false). used is the malformed head's
     * length, or the empty lines when no head fits in the limit. */
    HTTP_PARSE_ERROR,
};

/* Where the search for the head's end stopped (bytes of the buffer already
 * searched); set by http_parser_init(), and back to 0 after each head. */
struct http_parser {
    size_t scanned;
};

void http_parser_init(struct http_parser *ps);

/*
 * Parse the request head at the front of data[0, n): the input a
 * connection has not used yet, n at most limit bytes (the stream's read
 * limit: a head that does not end within limit bytes is a 400). Fills *rq
 * when a head is whole (HTTP_PARSE_REQUEST or HTTP_PARSE_ERROR), and
 * *used (always): the bytes the caller must drop before the next call.
 */
enum http_parse_result http_parse_head(struct http_parser *ps, const char *data, size_t n,
                                       size_t limit, struct http_request *rq, size_t *used);

#endif
