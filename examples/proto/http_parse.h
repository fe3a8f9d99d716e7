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
 *
 * What it enforces (RFC 9110 and 9112): lines end with CRLF (a bare LF, as
 * soon as it is seen, is a 400: RFC 9112 2.2 allows that or reading LF as
 * CRLF, and the two readings must not differ between a proxy and us); a
 * request line "METHOD SP TARGET SP HTTP/1.x"; header names are tokens and
 * header values hold no control byte but HTAB (a NUL, a bare CR...: 400);
 * HTTP/1.1 needs exactly one Host header with a valid host[:port] (400
 * without, or with two); one Content-Length (two that differ: 400); a
 * Transfer-Encoding is a 501 (no chunked bodies here); no obsolete line
 * folding. It also takes out what a static file's answer depends on:
 * If-Modified-Since, If-None-Match, If-Range and a Range of bytes.
 */
#ifndef HTTP_PARSE_H
#define HTTP_PARSE_H

#include <stdbool.h>
#include <stddef.h>

#define HTTP_PATH_MAX 1024 /* a decoded path longer than this cannot name a file here */
#define HTTP_TAGS_MAX 256  /* an If-None-Match or If-Range value kept for comparing */

/* The Range header of a request, if it has one of bytes. */
enum http_range {
    HTTP_RANGE_NONE,    /* none, or one ignored: another unit, malformed, twice */
    HTTP_RANGE_BYTES,   /* bytes=first-last or bytes=first- (last HTTP_RANGE_END) */
    HTTP_RANGE_SUFFIX,  /* bytes=-n: the last n bytes (n in range_last) */
    HTTP_RANGE_SEVERAL, /* more than one range (a list): served whole here */
};

#define HTTP_RANGE_END ((unsigned long long)-1) /* bytes=first-: up to the end */

/* What the answer to a request depends on, taken out of its head. */
struct http_request {
    int status;               /* 0: serve path (or "/"); else the status to answer */
    int minor;                /* HTTP/1.minor */
    bool head;                /* HEAD: the answer has no body */
    bool keep_alive;          /* the connection goes on after the answer */
    bool root;                /* the path is / */
    unsigned long long body;  /* Content-Length of the request: bytes to skip after it */
    /* Conditions (RFC 9110, 13.1): -1 or "" when absent. */
    long long if_modified_since; /* seconds since the epoch; -1 also if not a date */
    bool has_if_none_match;      /* if_none_match holds it ("" if too long) */
    bool has_if_range;           /* if_range_date or if_range_tag holds it (or neither) */
    long long if_range_date;     /* If-Range: a date, or -1 */
    char if_none_match[HTTP_TAGS_MAX]; /* the list of entity-tags, or "*" */
    char if_range_tag[HTTP_TAGS_MAX];  /* If-Range: an entity-tag, or "" */
    enum http_range range;
    unsigned long long range_first, range_last; /* see enum http_range */
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
    /* A protocol error: answer rq->status, 400 (a malformed head, a bare LF
     * before the head's end, or no head within limit bytes) or 501 (a
     * Transfer-Encoding), then close the connection (rq->keep_alive is
     * false). used is the malformed head's length, or the empty lines when
     * there is no whole head (a bare LF, or none in the limit). */
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

/* An HTTP-date (RFC 9110, 5.6.7: IMF-fixdate, and the obsolete RFC 850 and
 * asctime forms) in s[0, n): seconds since the epoch, or -1 if it is not
 * one (or before 1970). A two-digit year is 19yy from 70, else 20yy. */
long long http_parse_date(const char *s, size_t n);

/* Whether the entity-tag etag (quoted, e.g. "\"1f-5e1\"") is in list, an
 * If-None-Match value: "*" or entity-tags separated by commas, compared
 * weakly (a W/ prefix on either side is ignored). */
bool http_etag_listed(const char *list, const char *etag);

#endif
