/*
 * resp: the command parser of examples/kv_server.c (Redis's protocol,
 * RESP), on its own so that the fuzz targets (tests/fuzz/) can link it.
 * Pure functions over a byte buffer: no loop, no I/O; the only allocation
 * is the argument array of a command with more than 8 arguments, grown as
 * its arguments arrive (never sized by the count a client announces) and
 * given back when the next command starts if it grew past 1024 entries.
 *
 * What a command may cost: its own bytes in the buffer, plus 24 bytes per
 * argument (sizeof (struct resp_arg)). An argument takes 6 bytes at least
 * ("$0\r\n\r\n"), so a command costs at most 5 times its size, and its
 * count of arguments is limited (max_args, below) as its bulks are
 * (max_bulk); the whole command must fit in RESP_MAX_QUERY.
 *
 * Both of Redis's request forms: multibulk ("*2\r\n$3\r\nGET\r\n$1\r\nk\r\n")
 * and inline ("GET k\r\n", no quoting), chosen by the first byte as Redis
 * does. The buffer is the front of the connection's input (the stream's own
 * buffer, peeked): a command that is not whole yet stays at the front while
 * more is read, and the parser resumes where it stopped, so it keeps offsets
 * from the command's first byte, never pointers (the buffer may move).
 *
 *     struct resp_parser p;
 *     resp_parser_init(&p);
 *     while ((r = resp_parse(&p, buf + done, n - done, &used)) == RESP_COMMAND) {
 *         run p.argv[0, p.argc) (none: an empty command, nothing to run);
 *         done += used;
 *     }
 *     RESP_MORE: drop done bytes, read more (see resp_read_limit()), again;
 *     RESP_ERROR: answer "-ERR " p.error "\r\n" and close, as Redis does.
 *     resp_parser_free(&p);
 */
#ifndef RESP_H
#define RESP_H

#include <stddef.h>

#define RESP_MAX_BULK (512u * 1024 * 1024) /* Redis's proto-max-bulk-len */
#define RESP_MAX_ARGS (1024 * 1024)        /* Redis's former multibulk limit */
#define RESP_MAX_QUERY ((size_t)1 << 30)   /* Redis's client-query-buffer-limit */
#define RESP_MAX_HEADER 65536              /* an inline command or "$N" line */
#define RESP_KEEP_ARGS 1024                /* a larger argument array is given back */

struct resp_arg {
    size_t off, len;        /* where in the command, set while parsing */
    const char *p;          /* off made a pointer once the command is whole */
};

struct resp_parser {
    /* The command being parsed; offsets are from its first byte. */
    long long want;         /* arguments announced by "*N"; -1: not read yet */
    long long bulk;         /* length announced by the last "$N"; -1: none */
    size_t pos;             /* bytes parsed */
    size_t need;            /* bytes the command needs at least */
    size_t argc, argcap;
    struct resp_arg *argv;  /* small, unless a command has more arguments */
    struct resp_arg small[8];
    char error[96];         /* the protocol error, after RESP_ERROR */
    /* Limits, set by resp_parser_init() and changeable after it: a command
     * of more arguments ("*N" or an inline line) or a bulk ("$N") longer
     * is a protocol error, "invalid multibulk length" ("too many
     * arguments" inline) or "invalid bulk length", as in Redis. */
    size_t max_args;        /* RESP_MAX_ARGS (INT_MAX in Redis 7) */
    size_t max_bulk;        /* RESP_MAX_BULK, and no more */
};

enum resp_result {
    RESP_MORE,      /* the command is not whole yet: read more, call again */
    RESP_COMMAND,   /* a whole command of *used bytes: argv[0, argc) */
    RESP_ERROR,     /* a protocol error, described in error[] */
    RESP_NOMEM,     /* no memory for the arguments */
};

void resp_parser_init(struct resp_parser *p);
/* Free what the parser allocated (it may be initialized again after). */
void resp_parser_free(struct resp_parser *p);

/*
 * Parse one command from buf[0, n) (n > 0), whose first byte is the
 * command's first byte, resuming after an earlier RESP_MORE on the same
 * command (buf holding what it held then and more). RESP_COMMAND: *used is
 * the command's length and p->argv[i].p / .len its arguments, pointers into
 * buf (argc 0: an empty command, "*0" or an empty line). Otherwise *used
 * is 0. After RESP_ERROR, the connection is to be closed.
 */
enum resp_result resp_parse(struct resp_parser *p, const char *buf, size_t n, size_t *used);

/*
 * The read limit the stream should have now, when the front of its buffer
 * is n bytes of a command not whole yet and the limit is limit: raised past
 * both while a command larger than the limit arrives (up to
 * RESP_MAX_QUERY), back to base once no big command is pending, else limit.
 * Always more than n, so that the next read has room. 0 if the command
 * cannot fit (RESP_MAX_QUERY): a protocol error, in p->error.
 */
size_t resp_read_limit(struct resp_parser *p, size_t n, size_t limit, size_t base);

/* Redis's string2ll(): a decimal that reads back the same (no sign "+", no
 * leading zeros or spaces), in range. 1 and the value in *out if it is
 * one, else 0. */
int resp_parse_ll(const char *s, size_t n, long long *out);

#endif
