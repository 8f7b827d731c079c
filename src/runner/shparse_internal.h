/*
 * shparse_internal.h - what the parser's files share: shparse.c (the parse, its
 * lists), shparse_cmd.c (commands), shparse_lex.c (tokens, here-documents) and
 * shparse_word.c (words: quoting, substitutions).
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


/* parse_matched_pair's flags. */
#define P_FIRSTCLOSE 0x01u
#define P_ALLOWESC 0x02u
#define P_DQUOTE 0x04u
#define P_ARRAYSUB 0x20u
#define P_DOLBRACE 0x40u
#define P_ARITH 0x80u
#define P_HEREDOC 0x100u /* an unquoted here-document's body: to the end, '"' plain */

/* Character classes (bash's shellblank, shellmeta, legal_variable_char...). */
static inline bool shparse__is_blank(int c)
{
    return c == ' ' || c == '\t';
}

static inline bool shparse__is_meta(int c)
{
    return c == '|' || c == '&' || c == ';' || c == '(' || c == ')' || c == '<' || c == '>' ||
           c == ' ' || c == '\t' || c == '\n';
}

static inline bool shparse__is_digit(int c)
{
    return c >= '0' && c <= '9';
}

static inline bool shparse__is_name_start(int c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_';
}

static inline bool shparse__is_name_char(int c)
{
    return shparse__is_name_start(c) || shparse__is_digit(c);
}

/* A character after '$' that makes a parameter expansion ($x, $1, $@, $?...). */
static inline bool shparse__starts_param(int c)
{
    return shparse__is_name_char(c) || (c > 0 && strchr("@*#?$!-", c) != NULL);
}

/* shparse_lex.c: input, tokens, here-documents */
void shparse__record_continuation(struct sp *p, size_t at);
int shparse__raw_span(const struct sp *p, size_t start, size_t end, struct sp_str *out)
    __attribute__((warn_unused_result));

/* shparse_pair.c and shparse_word.c: words */
/* The body of $'...' decoded onto out (bash's ansicstr); false when the
 * result would depend on the locale or hold a NUL. */
bool shparse__ansi_decode(const char *s, size_t n, struct sp_str *out, int *r);
/* After "$(", "<(" or ">(" (c says which): a command substitution, or arithmetic. */
int shparse__comsub_or_arith(struct sp *p, struct sp_word *w, int c);
int shparse__matched_pair(struct sp *p, struct sp_word *w, int qc, int open, int close,
                          unsigned flags, struct sp_str *val) __attribute__((warn_unused_result));
void shparse__rollback_items(struct sp_ctx *c, size_t mark);
int shparse__read_word(struct sp *p, int c, struct sp_tok_s *t) __attribute__((warn_unused_result));

/* shparse.c: the parse's helpers, tokens for the grammar, lists */
int shparse__check(struct sp *p, int r);
int shparse__add_item(struct sp *p, size_t at, struct sp_str *text, enum shparse_kind kind,
                      bool literal_name);
int shparse__put_word(struct sp *p, struct sp_str *s, const struct sp_word *w);
int shparse__peek(struct sp *p, struct sp_tok_s **t);
int shparse__peek_type(struct sp *p, int *type);
int shparse__next(struct sp *p, struct sp_tok_s *t);
int shparse__skip(struct sp *p);
const char *shparse__tok_text(const struct sp *p, const struct sp_tok_s *t, char *buf, size_t n);
int shparse__unexpected(struct sp *p, const struct sp_tok_s *t);
int shparse__expect(struct sp *p, int type);
int shparse__skip_newlines(struct sp *p);
bool shparse__is_redir_op(int t);
bool shparse__starts_shell_command(int t);
bool shparse__starts_command(int t);
bool shparse__is_list_terminator(int t);
int shparse__compound_list(struct sp *p);

/* shparse_cmd.c: commands */
int shparse__simple_command(struct sp *p, struct sp_tok_s *first);
int shparse__shell_command(struct sp *p);
int shparse__function_keyword(struct sp *p);
int shparse__function_body(struct sp *p);
int shparse__coproc(struct sp *p);
int shparse__redirection_list(struct sp *p);

/* shparse_lex.c */
int shparse__getc(struct sp *p, bool remove_continuation);
void shparse__ungetc(struct sp *p);
int shparse__lex(struct sp *p, struct sp_tok_s *t) __attribute__((warn_unused_result));
void shparse__tok_clear(struct sp_tok_s *t);
void shparse__word_clear(struct sp_word *w);
/* The word as written (continuations removed), into out. */
int shparse__word_raw(const struct sp *p, const struct sp_word *w, struct sp_str *out)
    __attribute__((warn_unused_result));
int shparse__read_heredocs(struct sp *p) __attribute__((warn_unused_result));
/* Parses text (which bash parses only when it runs it) as a script of its own. */
int shparse__parse_derived(struct sp *p, const char *text, size_t len, size_t origin)
    __attribute__((warn_unused_result));

/* shparse.c */
int shparse__fail(struct sp *p, size_t pos, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
int shparse__nomem(struct sp *p);
int shparse__str_putc(struct sp_str *s, char c) __attribute__((warn_unused_result));
/* Appends c to val when there is one (quote removal's output). */
static inline int shparse__put_val(struct sp_str *val, int c)
{
    return val != NULL ? shparse__str_putc(val, (char)c) : 0;
}
int shparse__str_put(struct sp_str *s, const char *b, size_t n) __attribute__((warn_unused_result));
void shparse__str_free(struct sp_str *s);
/* Parses a $( ... ) whose '$(' was just read, up to and with its ')'. */
int shparse__parse_comsub(struct sp *p) __attribute__((warn_unused_result));
/* Parses a script (a backquote's body...) on p's source, to its end. */
int shparse__parse_script(struct sp *p) __attribute__((warn_unused_result));
bool shparse__reserved_ok(int last, int before);

#endif
