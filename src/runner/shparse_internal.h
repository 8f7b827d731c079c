/*
 * shparse_internal.h - what shparse.c (the grammar, the checked strings) and
 * shparse_lex.c (bytes to tokens: quoting, substitutions, here-documents) share.
 * Names follow bash 5.2's parse.y where the code mirrors it (last_read_token,
 * PST_CASEPAT, parse_matched_pair...), so the two can be read side by side.
 *
 * Not for: anything outside src/runner/shparse*.c.
 */
#ifndef CREDBROKER_SHPARSE_INTERNAL_H
#define CREDBROKER_SHPARSE_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>

#include "shparse.h"

#define SP_EOF (-1)

/* Tokens (bash's yacc tokens). */
enum sp_tok {
    T_EOF = 1,
    T_NL,
    T_WORD,
    T_ASSIGN,    /* ASSIGNMENT_WORD */
    T_NUMBER,    /* the fd of a redirection */
    T_REDIR_WORD, /* {name} before a redirection */
    T_SEMI,
    T_AMP,
    T_PIPE,
    T_PIPE_AMP,
    T_AND_AND,
    T_OR_OR,
    T_DSEMI,
    T_SEMI_AND,
    T_DSEMI_AND,
    T_LPAREN,
    T_RPAREN,
    T_LESS,
    T_GREAT,
    T_DGREAT,
    T_LESS_AND,
    T_GREAT_AND,
    T_LESS_GREAT,
    T_CLOBBER,
    T_DLESS,
    T_DLESS_DASH,
    T_TLESS,
    T_AND_GREAT,
    T_AND_DGREAT,
    T_DASH,       /* the '-' of <&- and >&- */
    T_ARITH_CMD,  /* (( ... )) */
    T_ARITH_FOR,  /* the (( ... )) after for */
    /* reserved words */
    T_IF,
    T_THEN,
    T_ELSE,
    T_ELIF,
    T_FI,
    T_CASE,
    T_ESAC,
    T_FOR,
    T_SELECT,
    T_WHILE,
    T_UNTIL,
    T_DO,
    T_DONE,
    T_IN,
    T_FUNCTION,
    T_TIME,
    T_LBRACE,
    T_RBRACE,
    T_BANG,
    T_COND_START,
    T_COND_END,
    T_COPROC,
    T_TIMEOPT,
    T_TIMEIGN,
    T_DOLPAREN, /* only as last_read_token: the start of $( ... ) */
};

/* parser_state bits the lexer keeps (bash's PST_*). */
#define PST_CASEPAT 0x0001u
#define PST_CASESTMT 0x0002u
#define PST_CONDEXPR 0x0004u
#define PST_ASSIGNOK 0x0008u
#define PST_REDIRLIST 0x0010u
#define PST_REGEXP 0x0020u
#define PST_EXTPAT 0x0040u
#define PST_COMPASSIGN 0x0080u

/* A growable string (always NUL-terminated once it holds anything). */
struct sp_str {
    char *p;
    size_t len, cap;
};

/* A text being parsed: the command, or one bash parses only when it runs it. */
struct sp_src {
    const char *s;
    size_t len;
    size_t origin; /* offset in the command where this text starts (for errors) */
    bool derived;  /* not the command itself: errors point at origin */
    size_t *conts; /* offsets of the '\' of each line continuation removed, ascending */
    size_t nconts, capconts;
};

/* One word as read. */
struct sp_word {
    size_t start, end;  /* its bytes in the source */
    struct sp_str val;  /* after quote removal (meaningful when literal) */
    bool literal;       /* no expansion or substitution */
    bool quoted;        /* bash's W_QUOTED: a quote or a backslash */
    bool all_digits;
};

struct sp_tok_s {
    int type;
    size_t pos;  /* where it starts, for errors */
    size_t mark; /* items before it was read: its nested items start here */
    struct sp_word w; /* for T_WORD, T_ASSIGN, T_NUMBER, T_REDIR_WORD */
    char *arith; /* for T_ARITH_CMD, T_ARITH_FOR: the expression as written */
};

struct sp_heredoc {
    struct sp_str delim;
    bool quoted, strip_tabs;
    size_t pos;
};

/* bash's lexer state: saved and reset around a $( ... ). */
struct sp_lex {
    int last, before; /* last_read_token, token_before_that */
    unsigned flags;
    int esacs_needed, expecting_in;
    bool in_comsub; /* shell_eof_token is ')' */
    size_t comsub_at; /* where its "$(" stands */
    bool frozen;    /* inside [[ ]]: last/before do not move (bash reads those tokens itself) */
};

struct sp_ctx {
    const char *top; /* the whole command, for line:col */
    size_t toplen;
    struct shparse_item *items;
    size_t nitems, capitems;
    int depth;
    size_t work;          /* bytes read, re-reads included (sp_getc) */
    int err;              /* first error */
    char *errbuf;
    size_t errlen;
};

struct sp {
    struct sp_ctx *ctx;
    struct sp_src *src;
    size_t pos, ungot; /* ungot: where the last character read stands */
    size_t back[4];    /* where the ones before it stand: sp_ungetc goes back through them */
    size_t nback;
    struct sp_lex lx;
    struct sp_tok_s la;
    bool have_la;
    struct sp_heredoc *hd; /* pending here-documents */
    size_t nhd, caphd;
};

/* shparse_lex.c */
int sp_getc(struct sp *p, bool remove_continuation);
void sp_ungetc(struct sp *p);
int sp_lex(struct sp *p, struct sp_tok_s *t) __attribute__((warn_unused_result));
void sp_tok_clear(struct sp_tok_s *t);
void sp_word_clear(struct sp_word *w);
/* The word as written (continuations removed), into out. */
int sp_word_raw(const struct sp *p, const struct sp_word *w, struct sp_str *out)
    __attribute__((warn_unused_result));
int sp_read_heredocs(struct sp *p) __attribute__((warn_unused_result));
/* Parses text (which bash parses only when it runs it) as a script of its own. */
int sp_parse_derived(struct sp *p, const char *text, size_t len, size_t origin)
    __attribute__((warn_unused_result));

/* shparse.c */
int sp_fail(struct sp *p, size_t pos, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
int sp_nomem(struct sp *p);
int sp_str_putc(struct sp_str *s, char c) __attribute__((warn_unused_result));
int sp_str_put(struct sp_str *s, const char *b, size_t n) __attribute__((warn_unused_result));
void sp_str_free(struct sp_str *s);
/* Parses a $( ... ) whose '$(' was just read, up to and with its ')'. */
int sp_parse_comsub(struct sp *p) __attribute__((warn_unused_result));
/* Parses a script (a backquote's body...) on p's source, to its end. */
int sp_parse_script(struct sp *p) __attribute__((warn_unused_result));
bool sp_reserved_ok(int last, int before);

#endif
