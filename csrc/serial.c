/* Saving and loading tapes: the file format (docs/API.md, "Saving and loading").
 *
 *   header (40 bytes)  magic "\x89TAPEAD\n", u32 format version, u32 byte-order mark 0x01020304,
 *                      u8 sizes of int32, int64 and double, u8 0, u32 0, u64 payload length,
 *                      u64 checksum (XXH64, seed 0) of the payload
 *   payload            N_COUNTS int64 counts (enum below), then the sections in file order
 *                      (ORDER): op table (16 bytes an entry: NUL-padded name, int8 arity, int8
 *                      results, 2 zeros), the shape table (int64 words: nd, dims, strides per
 *                      shape, as tape_impl.h keeps it), the index table (int64 word counts
 *                      per entry, then the int32 words: GATHER's and SCATTER's attributes;
 *                      tape.h), opcodes (one byte each, indices into the op table),
 *                      the operand stream (varints, below), constants (double), outputs (int32
 *                      operand codes), recorded inputs (double), the recorded outputs of each
 *                      primitive call (double), branch guards (int32 variables), guard sites
 *                      (int32 variable, frozen variable or -1, line or -1, file index), meta
 *                      (JSON) and f of ad.record (pickle bytes): tapead/saving.py reads those two.
 *
 * Operand stream: per operation, its operand words as in memory (tape.h, "Operands"), each a
 * LEB128 varint: an operand code q of the operation whose first result is variable z is 2c+1 for
 * constant c, else 2·zigzag(z-1-q) (the previous variable costs one byte); a variadic op's
 * count n comes first, plain, and its trailing copy is left out; a CALL's result count r is
 * plain, and its primitive id word is its index in the file's primitive table, plain (ids are
 * per process; tapead/saving.py saves primitives by name). An array block op (tape.h, "Block
 * operations") has n, r, its shape id, its attribute (zigzag), then per operand block its first
 * element's operand code (as above) and its shape id, plain. The loader checks each block op as
 * the recorder does (tp_block_valid: shapes, operand ranges, the op's own rules) before it can
 * be swept; the results of every block op are counted in the header.
 *
 * The values at recording are not saved but for primitive calls' outputs (so that every
 * variable costs file bytes): tp_load_values recomputes them from the recorded inputs with the
 * sweeps' own rules (bit for bit), checks every branch guard holds there and every primitive
 * gives the values it gave when saved.
 *
 * The loader trusts nothing: every count is bounded by the payload's length before anything is
 * allocated, every index is checked before it is used; any violation is TP_EFILE with a message.
 */
#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include "sweeps.h"
#include "block.h"

#define VERSION 2
#define HEADER 40
#define BOM 0x01020304u
#define NAME_LEN 12               /* op table entry: name, NUL-padded */
#define ENTRY 16
static const uint8_t MAGIC[8] = {0x89, 'T', 'A', 'P', 'E', 'A', 'D', '\n'};

enum { C_INPUTS, C_OPS, C_WORDS, C_STREAM, C_CONSTS, C_OUTPUTS, C_GUARDS, C_SITES, C_PRIMS,
       C_OPTABLE, C_META, C_FN, C_CALLVALS, C_SHAPES, C_SHAPEW, C_BLOCKVARS, C_INDEX, C_IXW,
       N_COUNTS };
static const int ORDER[] = {C_OPTABLE, C_SHAPEW, C_INDEX, C_IXW, C_OPS, C_STREAM, C_CONSTS,
                            C_OUTPUTS, C_INPUTS, C_CALLVALS, C_GUARDS, C_SITES, C_META, C_FN};
#define N_SECTIONS ((int)(sizeof ORDER / sizeof *ORDER))
static const int64_t WIDTH[N_COUNTS] = {           /* bytes an item; 0: no section */
    [C_INPUTS] = 8, [C_OPS] = 1, [C_WORDS] = 0, [C_STREAM] = 1, [C_CONSTS] = 8, [C_OUTPUTS] = 4,
    [C_GUARDS] = 4, [C_SITES] = 16, [C_PRIMS] = 0, [C_OPTABLE] = ENTRY, [C_META] = 1, [C_FN] = 1,
    [C_CALLVALS] = 8, [C_SHAPES] = 0, [C_SHAPEW] = 8, [C_BLOCKVARS] = 0, [C_INDEX] = 8,
    [C_IXW] = 4};
static const char *const SECTION[N_COUNTS] = {
    "inputs", "operations", "operand words", "operand stream bytes", "constants", "outputs",
    "branch guards", "guard sites", "primitives", "op table entries", "meta bytes", "f bytes",
    "primitive call outputs", "shapes", "shape table words", "array operation results",
    "index table entries", "index table words"};

/* ---- checksum: XXH64 (seed 0) --------------------------------------------------------------- */
static const uint64_t P1 = 0x9E3779B185EBCA87ULL, P2 = 0xC2B2AE3D27D4EB4FULL,
                      P3 = 0x165667B19E3779F9ULL, P4 = 0x85EBCA77C2B2AE63ULL,
                      P5 = 0x27D4EB2F165667C5ULL;

static inline uint64_t rotl(uint64_t x, int r) { return (x << r) | (x >> (64 - r)); }
static inline uint64_t rd64(const uint8_t *p) { uint64_t v; memcpy(&v, p, 8); return v; }
static inline uint32_t rd32(const uint8_t *p) { uint32_t v; memcpy(&v, p, 4); return v; }
static inline uint64_t xround(uint64_t acc, uint64_t lane)
{
    return rotl(acc + lane * P2, 31) * P1;
}
static inline uint64_t xmerge(uint64_t h, uint64_t v) { return (h ^ xround(0, v)) * P1 + P4; }

uint64_t tp_checksum(const uint8_t *p, int64_t len)     /* little-endian lanes as XXH64 */
{
    const uint8_t *end = p + len;
    uint64_t h;
    if (len >= 32) {
        uint64_t v1 = P1 + P2, v2 = P2, v3 = 0, v4 = -P1;
        for (; end - p >= 32; p += 32) {
            v1 = xround(v1, rd64(p)); v2 = xround(v2, rd64(p + 8));
            v3 = xround(v3, rd64(p + 16)); v4 = xround(v4, rd64(p + 24));
        }
        h = rotl(v1, 1) + rotl(v2, 7) + rotl(v3, 12) + rotl(v4, 18);
        h = xmerge(xmerge(xmerge(xmerge(h, v1), v2), v3), v4);
    } else h = P5;
    h += (uint64_t)len;
    for (; end - p >= 8; p += 8) h = rotl(h ^ xround(0, rd64(p)), 27) * P1 + P4;
    if (end - p >= 4) { h = rotl(h ^ (uint64_t)rd32(p) * P1, 23) * P2 + P3; p += 4; }
    for (; p < end; p++) h = rotl(h ^ *p * P5, 11) * P1;
    h ^= h >> 33; h *= P2; h ^= h >> 29; h *= P3;
    return h ^ (h >> 32);
}

/* ---- errors --------------------------------------------------------------------------------- */
typedef struct { char *msg; int64_t cap; } err_t;

static int fail(err_t *e, const char *fmt, ...)
{
    if (e->msg && e->cap > 0) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(e->msg, (size_t)e->cap, fmt, ap);
        va_end(ap);
    }
    return TP_EFILE;
}

/* ---- varints -------------------------------------------------------------------------------- */
static inline uint8_t *put_varint(uint8_t *o, uint64_t v)
{
    if (v < 0x80) { *o = (uint8_t)v; return o + 1; }            /* the common case */
    if (v < 0x4000) { o[0] = (uint8_t)(v | 0x80); o[1] = (uint8_t)(v >> 7); return o + 2; }
    while (v >= 0x80) { *o++ = (uint8_t)(v | 0x80); v >>= 7; }
    *o++ = (uint8_t)v;
    return o;
}

/* One varint from *p (before end); 0, or -1 if it runs past end or past 64 bits. */
static inline int get_varint(const uint8_t **p, const uint8_t *end, uint64_t *v)
{
    const uint8_t *q = *p;
    if (q < end && *q < 0x80) { *v = *q; *p = q + 1; return 0; }     /* the common case */
    uint64_t r = 0;
    for (int s = 0; s < 64; s += 7) {
        if (q == end) return -1;
        uint8_t b = *q++;
        if (s == 63 && b > 1) return -1;
        r |= (uint64_t)(b & 0x7f) << s;
        if (b < 0x80) { *v = r; *p = q; return 0; }
    }
    return -1;
}

static inline uint64_t zigzag(int64_t s) { return ((uint64_t)s << 1) ^ (uint64_t)(s >> 63); }
static inline int64_t unzigzag(uint64_t u) { return (int64_t)(u >> 1) ^ -(int64_t)(u & 1); }

static inline uint64_t encode_operand(int64_t z, int32_t q)
{
    if (q < 0) return 2 * (uint64_t)(-1 - (int64_t)q) + 1;
    int64_t s = z - 1 - q;
    return ((uint64_t)s << 2) ^ (uint64_t)(s >> 63) << 1;        /* 2 * zigzag(s) */
}

/* ---- saving --------------------------------------------------------------------------------- */
/* A walk over a tape's operand stream: each op's words and its first result variable. */
typedef struct { const int32_t *p; int64_t z; } walk_t;

static inline int64_t results_of(int op, const int32_t *p)   /* p: the op's first word */
{
    return tp_op_results[op] == VARIADIC ? p[1] : 1;
}

static inline void walk_next(walk_t *w, int op)
{
    int a = tp_op_arity[op];
    w->z += results_of(op, w->p);
    w->p += a == VARIADIC ? w->p[0] + 2 : a;
}

/* t has a primitive call (one memchr over the opcodes, no walk of the operands) */
static int has_calls(const tp_tape *t)
{
    return t->n_ops && memchr(t->ops, TP_OP_CALL, (size_t)t->n_ops);
}

/* Distinct primitive ids of the tape's calls, in order of first call, into ids (room for cap);
 * returns how many there are. */
int64_t tp_dump_prims(const tp_tape *t, int32_t *ids, int64_t cap)
{
    if (!tp_may_read(t)) return TP_ETHREAD;
    int64_t n = 0;
    if (!has_calls(t)) return 0;
    walk_t w = {t->args, t->n_inputs};
    for (int64_t k = 0; k < t->n_ops; walk_next(&w, t->ops[k++])) {
        if (t->ops[k] != TP_OP_CALL) continue;
        int32_t id = (int32_t)t->vals[w.p[2]];      /* n, r, id, inputs, n */
        int known = 0;
        for (int64_t i = 0; i < n && i < cap && !known; i++) known = ids[i] == id;
        if (!known && n < cap) ids[n] = id;
        n += !known;
    }
    return n;
}

/* Bytes a file of t takes at most, with guards, sites, meta and f of the given sizes. */
int64_t tp_dump_bound(const tp_tape *t, int64_t n_guards, int64_t n_sites, int64_t n_meta,
                      int64_t n_fn)
{
    const int calls = has_calls(t);
    return HEADER + 8 * N_COUNTS + ENTRY * TP_N_OPCODES + 8 * t->n_shp + 8 * t->n_index +
           4 * t->n_ixw + t->n_ops + 5 * t->n_args +    /* a word's varint: 35 bits at most */
           8 * t->n_consts + 4 * t->n_outputs + 8 * (calls ? t->n_vars : t->n_inputs) +
           4 * n_guards + 16 * n_sites + n_meta + n_fn;
}

static uint8_t *put(uint8_t *o, const void *src, int64_t bytes)
{
    if (bytes > 0) memcpy(o, src, (size_t)bytes);
    return o + (bytes > 0 ? bytes : 0);
}

/* The opcodes of t through file_op into fops and its operand stream at o, in one pass; *n_calls,
 * *n_callvals: its calls and their outputs. NULL if a call's primitive is not among prims. */
static uint8_t *encode(const tp_tape *t, const uint8_t *file_op, uint8_t *fops,
                       const int32_t *prims, int64_t n_prims, uint8_t *o, int64_t *n_calls,
                       int64_t *n_callvals, int64_t *n_blockvars)
{
    const uint8_t *const ops = t->ops;
    const int64_t n_ops = t->n_ops;
    const int32_t *p = t->args;
    int64_t z = t->n_inputs;
    int8_t arity[TP_N_OPCODES];         /* a local copy: o's byte stores cannot alias it */
    for (int op = 0; op < TP_N_OPCODES; op++) arity[op] = (int8_t)tp_op_arity[op];
    for (int64_t k = 0; k < n_ops; k++) {
        const int op = ops[k], a = arity[op];
        fops[k] = file_op[op];
        if (a != VARIADIC) {                           /* one result */
            for (int i = 0; i < a; i++) o = put_varint(o, encode_operand(z, p[i]));
            p += a;
            z++;
            continue;
        }
        const int32_t n = p[0], *q = p + 1;
        const int64_t zk = z;                          /* its first result */
        int32_t i = 0;
        p += n + 2;
        z += tp_op_results[op] == VARIADIC ? q[0] : 1;
        o = put_varint(o, (uint64_t)n);
        if (tp_op_results[op] == VARIADIC) o = put_varint(o, (uint64_t)q[i++]);   /* r */
        if (tp_op_kind[op] == TP_KIND_BLOCK) {         /* shape, attribute, (first, shape)s */
            o = put_varint(o, (uint64_t)q[1]);
            o = put_varint(o, zigzag(q[2]));
            for (i = 3; i < n; i += 2) {
                o = put_varint(o, encode_operand(zk, q[i]));
                o = put_varint(o, (uint64_t)q[i + 1]);
            }
            *n_blockvars += q[0];
            continue;
        }
        if (op == TP_OP_CALL) {                        /* the id: its primitive's index */
            int32_t id = (int32_t)t->vals[q[i++]];
            int64_t j = 0;
            while (j < n_prims && prims[j] != id) j++;
            if (j == n_prims) return NULL;
            o = put_varint(o, (uint64_t)j);
            (*n_calls)++;
            *n_callvals += q[0];
        }
        for (; i < n; i++) o = put_varint(o, encode_operand(zk, q[i]));
    }
    return o;
}

/* The file of t into out (tp_dump_bound bytes of room): prims are the ids of tp_dump_prims, in
 * file order; guards, sites (4 int32 each), meta and fn as tapead/saving.py gives them. Returns
 * the file's length. */
int64_t tp_dump(const tp_tape *t, const int32_t *prims, int64_t n_prims, const int32_t *guards,
                int64_t n_guards, const int32_t *sites, int64_t n_sites, const uint8_t *meta,
                int64_t n_meta, const uint8_t *fn, int64_t n_fn, uint8_t *out)
{
    if (!tp_may_read(t)) return TP_ETHREAD;
    if (!tp_closed(t)) return TP_EARG;
    uint8_t *o = out + HEADER + 8 * N_COUNTS, file_op[TP_N_OPCODES] = {0}, used[256] = {0};
    int64_t n_table = 0, n_calls = 0, n_callvals = 0, n_blockvars = 0;
    const uint8_t *const ops = t->ops;
    for (int64_t k = 0, n = t->n_ops; k < n; k++) used[ops[k]] = 1;
    for (int op = 0; op < TP_N_OPCODES; op++) {       /* the op table: the ops it uses */
        if (!used[op]) continue;
        memset(o, 0, ENTRY);
        size_t len = strlen(tp_op_name[op]);
        memcpy(o, tp_op_name[op], len < NAME_LEN - 1 ? len : NAME_LEN - 1);
        o[NAME_LEN] = (uint8_t)(int8_t)tp_op_arity[op];
        o[NAME_LEN + 1] = (uint8_t)(int8_t)tp_op_results[op];
        o += ENTRY;
        file_op[op] = (uint8_t)n_table++;
    }
    o = put(o, t->shp, 8 * t->n_shp);
    for (int64_t i = 0; i < t->n_index; i++) {      /* each entry's word count, then the words */
        int64_t len;
        tp_index_of(t, (int32_t)i, &len);
        o = put(o, &len, 8);
    }
    o = put(o, t->ixw, 4 * t->n_ixw);
    uint8_t *stream = o + t->n_ops;                   /* after the opcodes */
    if (!(o = encode(t, file_op, o, prims, n_prims, stream, &n_calls, &n_callvals,
                     &n_blockvars))) return TP_EARG;
    int64_t stream_len = o - stream;
    for (int64_t k = 0; k < t->n_consts; k++) o = put(o, &t->vals[-1 - k], 8);   /* by index */
    o = put(o, t->outputs, 4 * t->n_outputs);
    o = put(o, t->vals, 8 * t->n_inputs);
    if (n_calls) {                                     /* the calls' recorded outputs */
        walk_t w = {t->args, t->n_inputs};
        for (int64_t k = 0; k < t->n_ops; walk_next(&w, t->ops[k++]))
            if (t->ops[k] == TP_OP_CALL) o = put(o, t->vals + w.z, 8 * (int64_t)w.p[1]);
    }
    o = put(o, guards, 4 * n_guards);
    o = put(o, sites, 16 * n_sites);
    o = put(o, meta, n_meta);
    o = put(o, fn, n_fn);
    int64_t counts[N_COUNTS] = {
        [C_INPUTS] = t->n_inputs, [C_OPS] = t->n_ops, [C_WORDS] = t->n_args,
        [C_STREAM] = stream_len, [C_CONSTS] = t->n_consts, [C_OUTPUTS] = t->n_outputs,
        [C_GUARDS] = n_guards, [C_SITES] = n_sites, [C_PRIMS] = n_prims,
        [C_OPTABLE] = n_table, [C_META] = n_meta, [C_FN] = n_fn, [C_CALLVALS] = n_callvals,
        [C_SHAPES] = t->n_shapes, [C_SHAPEW] = t->n_shp, [C_BLOCKVARS] = n_blockvars,
        [C_INDEX] = t->n_index, [C_IXW] = t->n_ixw};
    memcpy(out + HEADER, counts, sizeof counts);
    int64_t payload = o - out - HEADER;
    uint64_t sum = tp_checksum(out + HEADER, payload), plen = (uint64_t)payload;
    uint32_t version = VERSION, bom = BOM, zero = 0;
    uint8_t sizes[4] = {sizeof(int32_t), sizeof(int64_t), sizeof(double), 0};
    memcpy(out, MAGIC, 8);
    memcpy(out + 8, &version, 4);
    memcpy(out + 12, &bom, 4);
    memcpy(out + 16, sizes, 4);
    memcpy(out + 20, &zero, 4);
    memcpy(out + 24, &plen, 8);
    memcpy(out + 32, &sum, 8);
    return o - out;
}

/* ---- loading: the header and the counts -------------------------------------------------- */
typedef struct {
    int64_t c[N_COUNTS];
    int64_t at[N_COUNTS];         /* offset of each section in the file */
} layout_t;

static int read_header(const uint8_t *b, int64_t len, layout_t *L, int check_sum, err_t *e)
{
    if (len < 8 || memcmp(b, MAGIC, 8) != 0)
        return fail(e, "not a tapead tape (its first bytes are not the magic \\x89TAPEAD\\n)");
    if (len < HEADER)
        return fail(e, "truncated: %" PRId64 " bytes, shorter than the %d-byte header", len,
                    HEADER);
    uint32_t version = rd32(b + 8), bom = rd32(b + 12);
    if (bom != BOM)
        return bom == 0x04030201u
            ? fail(e, "written on a machine of the other byte order (this one reads only its own)")
            : fail(e, "bad byte-order mark 0x%08x (expected 0x%08x)", bom, BOM);
    if (version != VERSION)
        return fail(e, "format version %u; this tapead reads version %d only", version, VERSION);
    if (b[16] != sizeof(int32_t) || b[17] != sizeof(int64_t) || b[18] != sizeof(double) ||
        b[19] != 0 || rd32(b + 20) != 0)
        return fail(e, "written with int32, int64 and double sizes %d, %d and %d (here %d, %d, "
                    "%d) or reserved bytes set", b[16], b[17], b[18], (int)sizeof(int32_t),
                    (int)sizeof(int64_t), (int)sizeof(double));
    uint64_t payload = rd64(b + 24);
    if (payload != (uint64_t)(len - HEADER))
        return fail(e, "%s: the header says %" PRIu64 " payload bytes, the file has %" PRId64,
                    payload > (uint64_t)(len - HEADER) ? "truncated" : "bytes after the end",
                    payload, len - HEADER);
    if (check_sum && tp_checksum(b + HEADER, len - HEADER) != rd64(b + 32))
        return fail(e, "checksum mismatch: the file is corrupt");
    if (len - HEADER < 8 * N_COUNTS)
        return fail(e, "truncated: no room for the %d counts", N_COUNTS);
    memcpy(L->c, b + HEADER, sizeof L->c);
    const int64_t *c = L->c;
    for (int s = 0; s < N_COUNTS; s++)
        if (c[s] < 0) return fail(e, "negative count of %s (%" PRId64 ")", SECTION[s], c[s]);
    int64_t at = HEADER + 8 * N_COUNTS, room = len - at;
    for (int i = 0; i < N_SECTIONS; i++) {              /* each bounded by what is left */
        int s = ORDER[i];
        L->at[s] = at;
        if (c[s] > room / WIDTH[s])
            return fail(e, "%" PRId64 " %s need more bytes than the %" PRId64 " left", c[s],
                        SECTION[s], room);
        at += c[s] * WIDTH[s]; room -= c[s] * WIDTH[s];
    }
    if (room)
        return fail(e, "the sections end %" PRId64 " bytes before the payload does", room);
    if (c[C_OPTABLE] > 256)
        return fail(e, "%" PRId64 " op table entries (at most 256)", c[C_OPTABLE]);
    if (c[C_BLOCKVARS] > INT32_MAX || c[C_INPUTS] + c[C_OPS] + c[C_CALLVALS] + c[C_BLOCKVARS] >
                                          INT32_MAX)
        return fail(e, "%" PRId64 " variables and %" PRId64 " array operation results: more "
                    "than a tape can index", c[C_INPUTS] + c[C_OPS] + c[C_CALLVALS],
                    c[C_BLOCKVARS]);
    if (c[C_SHAPES] > c[C_SHAPEW])              /* a shape is one word or more */
        return fail(e, "%" PRId64 " shapes cannot come from %" PRId64 " shape table words",
                    c[C_SHAPES], c[C_SHAPEW]);
    if (c[C_INDEX] > INT32_MAX)
        return fail(e, "%" PRId64 " index table entries: more than a tape can number",
                    c[C_INDEX]);
    if (c[C_PRIMS] > c[C_OPS] || c[C_CONSTS] + c[C_PRIMS] > INT32_MAX)
        return fail(e, "%" PRId64 " primitives for %" PRId64 " operations and %" PRId64
                    " constants", c[C_PRIMS], c[C_OPS], c[C_CONSTS]);
    if (c[C_WORDS] > c[C_STREAM] + c[C_OPS])   /* a word is one byte or more, but the copies */
        return fail(e, "%" PRId64 " operand words cannot come from %" PRId64 " bytes",
                    c[C_WORDS], c[C_STREAM]);
    return TP_OK;
}

enum { I_INPUTS, I_OPS, I_OUTPUTS, I_GUARDS, I_AT_GUARDS, I_SITES, I_AT_SITES, I_PRIMS,
       I_AT_META, I_META, I_AT_FN, I_FN, I_BLOCKVARS, N_INFO };

/* Checks the header, the checksum and that the sections fit: what tapead/saving.py needs to read
 * the meta, f and the guard sites (info: the counts and offsets, enum above). */
int tp_load_header(const uint8_t *b, int64_t len, int64_t *info, char *msg, int64_t cap)
{
    err_t e = {msg, cap};
    layout_t L;
    int rc = read_header(b, len, &L, 1, &e);
    if (rc < 0) return rc;
    int64_t v[N_INFO] = {L.c[C_INPUTS], L.c[C_OPS], L.c[C_OUTPUTS], L.c[C_GUARDS],
                         L.at[C_GUARDS], L.c[C_SITES], L.at[C_SITES], L.c[C_PRIMS],
                         L.at[C_META], L.c[C_META], L.at[C_FN], L.c[C_FN], L.c[C_BLOCKVARS]};
    memcpy(info, v, sizeof v);
    return TP_OK;
}

/* ---- loading: the program ----------------------------------------------------------------- */
typedef struct {
    const uint8_t *p, *end;       /* the operand stream */
    int64_t words;                /* operand words written */
    int64_t n_consts;             /* of the file */
} reader_t;

/* Why operand i of operation k (first result z) at stream position p is invalid. */
static int __attribute__((noinline, cold))
bad_operand(const reader_t *r, const uint8_t *p, int64_t k, int64_t z, int i, err_t *e)
{
    uint64_t u;
    if (get_varint(&p, r->end, &u) < 0)
        return fail(e, "the operand stream ends (or a number overflows) in operand %d of "
                    "operation %" PRId64, i + 1, k);
    if (u & 1)
        return fail(e, "operand %d of operation %" PRId64 " refers to constant %" PRIu64
                    "; the pool has %" PRId64, i + 1, k, u >> 1, r->n_consts);
    uint64_t zz = u >> 1;
    int64_t s = (int64_t)(zz >> 1) ^ -(int64_t)(zz & 1), var = z - 1 - s;
    if (var >= z)
        return fail(e, "operand %d of operation %" PRId64 " refers to variable %" PRId64
                    ", not yet defined (the operation writes variable %" PRId64 ")", i + 1, k,
                    var, z);
    return fail(e, "operand %d of operation %" PRId64 " refers to variable %" PRId64
                ", which does not exist", i + 1, k, var);
}

/* Operand i of operation k (first result z) into *q: a variable before z or a constant of the
 * file's pool. */
static inline int get_operand(reader_t *r, int64_t k, int64_t z, int i, int32_t *q, err_t *e)
{
    const uint8_t *at = r->p;
    uint64_t u;
    if (__builtin_expect(get_varint(&r->p, r->end, &u) < 0, 0))
        return bad_operand(r, at, k, z, i, e);
    if (u & 1) {
        if (__builtin_expect((u >> 1) >= (uint64_t)r->n_consts, 0))
            return bad_operand(r, at, k, z, i, e);
        *q = (int32_t)(-1 - (int64_t)(u >> 1));
        return TP_OK;
    }
    uint64_t zz = u >> 1;
    int64_t var = z - 1 - ((int64_t)(zz >> 1) ^ -(int64_t)(zz & 1));
    if (__builtin_expect((uint64_t)var >= (uint64_t)z, 0)) return bad_operand(r, at, k, z, i, e);
    *q = (int32_t)var;
    return TP_OK;
}

/* Operations *k, *k+1, ... while they are plain (plain[file opcode]: their arity; one result,
 * no comparison or variadic op), *z their first result: opcodes through lut into ops, operands
 * decoded into args, in one pass. *k, *z: the first op it did not do. */
static int plain_run(reader_t *r, const uint8_t *fops, const int *lut, const int8_t *plain,
                     uint8_t *ops, int64_t *k, int64_t *z, int64_t n_ops, int32_t *args,
                     int64_t n_words, err_t *e)
{
    const uint8_t *p = r->p, *const end = r->end;
    int64_t words = r->words, j = *k, zj = *z;
    const uint64_t nc = (uint64_t)r->n_consts;
    for (; j < n_ops; j++, zj++) {
        const int fo = fops[j], a = plain[fo];
        if (!a || words + a > n_words) break;      /* the caller does it, or reports it */
        ops[j] = (uint8_t)lut[fo];
        for (int i = 0; i < a; i++) {
            const uint8_t *at = p;
            uint64_t u;
            int64_t v;
            if (p < end && *p < 0x80) u = *p++;
            else if (get_varint(&p, end, &u) < 0) goto bad;
            if (u & 1) {
                if ((u >> 1) >= nc) goto bad;
                v = -1 - (int64_t)(u >> 1);
            } else {
                uint64_t zz = u >> 1;
                v = zj - 1 - ((int64_t)(zz >> 1) ^ -(int64_t)(zz & 1));
                if ((uint64_t)v >= (uint64_t)zj) goto bad;
            }
            args[words + i] = (int32_t)v;
            continue;
        bad:
            r->p = at; r->words = words; *k = j; *z = zj;
            return bad_operand(r, at, j, zj, i, e);
        }
        words += a;
    }
    r->p = p; r->words = words; *k = j; *z = zj;
    return TP_OK;
}

/* A constant's value, or NAN with *is_const 0 for a variable. */
static double const_value(const tp_tape *t, int32_t q, int *is_const)
{
    *is_const = q < 0;
    return q < 0 ? t->vals[q] : NAN;
}

/* The op table: op[i] = this tapead's opcode of the file's opcode i (-1: none). */
static int read_op_table(const uint8_t *b, const layout_t *L, int *lut, err_t *e)
{
    for (int i = 0; i < 256; i++) lut[i] = -1;
    for (int64_t i = 0; i < L->c[C_OPTABLE]; i++) {
        const uint8_t *ent = b + L->at[C_OPTABLE] + ENTRY * i;
        char name[NAME_LEN + 1] = {0};
        memcpy(name, ent, NAME_LEN);
        if (strlen(name) == NAME_LEN || ent[NAME_LEN + 2] || ent[NAME_LEN + 3])
            return fail(e, "op table entry %" PRId64 " is malformed", i);
        int op = 0;
        while (op < TP_N_OPCODES && strcmp(tp_op_name[op], name) != 0) op++;
        for (char *ch = name; *ch; ch++)
            if (*ch < 0x20 || *ch > 0x7e) *ch = '?';              /* printable in the message */
        if (op == TP_N_OPCODES)
            return fail(e, "op table entry %" PRId64 " names an operation this tapead does not "
                        "have (%.12s)", i, name);
        if ((int8_t)ent[NAME_LEN] != tp_op_arity[op] ||
            (int8_t)ent[NAME_LEN + 1] != tp_op_results[op])
            return fail(e, "op %s has %d operands and %d results in the file, %d and %d in this "
                        "tapead", name, (int8_t)ent[NAME_LEN], (int8_t)ent[NAME_LEN + 1],
                        tp_op_arity[op], tp_op_results[op]);
        lut[i] = op;
    }
    return TP_OK;
}

/* One plain varint that fits an int32 (below lim) into *v, else -1. */
static inline int get_small(reader_t *r, uint64_t lim, int32_t *v)
{
    uint64_t u;
    if (get_varint(&r->p, r->end, &u) < 0 || u >= lim || u > INT32_MAX) return -1;
    *v = (int32_t)u;
    return 0;
}

/* A block comparison (MAP of LT .. NE: x, y and its outcomes w) at op k, first result z: w a
 * block of constants, each 0, 1 or NaN; listed in bcmp (its first result and result count)
 * when replays check it (a branch guard: no NaN), for the guards and sites that name it. */
static int block_comparison(const tp_tape *t, const int32_t *q, int64_t k, int64_t z,
                            int64_t *bcmp, int64_t *n_bcmp, err_t *e)
{
    int64_t lo = 0, hi = -1, nan = 0;
    const int some = tp_span(t, q + 7, &lo, &hi);
    if (some && q[7] >= 0)
        return fail(e, "operation %" PRId64 " (a block comparison) has recorded outcomes that are "
                    "not constants", k);
    for (int64_t c = lo; c <= hi; c++) {
        const double v = t->vals[c];
        if (!(v == 0.0 || v == 1.0 || v != v))
            return fail(e, "operation %" PRId64 " (a block comparison) has a recorded outcome "
                        "that is not 0, 1 or NaN", k);
        nan |= v != v;
    }
    if (!nan && some) { bcmp[2 * *n_bcmp] = z; bcmp[2 * (*n_bcmp)++ + 1] = q[0]; }
    return TP_OK;
}

/* Array block op k (first result z, opcode op, n words q[1 .. n]: r, shape, attribute, then
 * (first, shape) per operand) from the stream, checked as the recorder checks it. */
static int load_block(tp_tape *t, reader_t *r, int op, int64_t k, int64_t z, int64_t n,
                      int32_t *q, int64_t *left, const layout_t *L, int64_t *bcmp,
                      int64_t *n_bcmp, err_t *e)
{
    const char *name = tp_op_name[op];
    uint64_t u;
    if (n < 5 || n % 2 == 0)
        return fail(e, "operation %" PRId64 " (%s) has %" PRId64 " operand words: an array "
                    "operation has 3 and two per operand", k, name, n);
    if (get_small(r, (uint64_t)*left + 1, &q[1]) < 0 || q[1] < 1)
        return fail(e, "operation %" PRId64 " (%s) has no valid result count (from 1 to the %"
                    PRId64 " array operation results left)", k, name, *left);
    *left -= q[1];
    if (get_small(r, (uint64_t)L->c[C_SHAPES], &q[2]) < 0)
        return fail(e, "operation %" PRId64 " (%s) has no valid result shape (the table has %"
                    PRId64 ")", k, name, L->c[C_SHAPES]);
    if (get_varint(&r->p, r->end, &u) < 0 || unzigzag(u) < INT32_MIN || unzigzag(u) > INT32_MAX)
        return fail(e, "operation %" PRId64 " (%s) has no valid attribute", k, name);
    q[3] = (int32_t)unzigzag(u);
    for (int64_t i = 3; i < n; i += 2) {
        const uint8_t *const at = r->p;
        int rc = get_operand(r, k, z, (int)(i - 3) / 2, &q[1 + i], e);
        if (rc < 0) {                     /* a variable not written yet: only an empty block's */
            const uint8_t *p = at;        /* first code (the recorder's 0 when no variable */
            uint64_t w;                   /* precedes the op), which its shape decides below */
            if (get_varint(&p, r->end, &w) < 0 || (w & 1)) return rc;
            r->p = p;
            q[1 + i] = 0;
        }
        if (get_small(r, (uint64_t)L->c[C_SHAPES], &q[2 + i]) < 0)
            return fail(e, "operand %" PRId64 " of operation %" PRId64 " (%s) has no valid "
                        "shape (the table has %" PRId64 ")", (i - 1) / 2, k, name,
                        L->c[C_SHAPES]);
        int64_t lo, hi;
        if (rc < 0 && tp_span(t, &q[1 + i], &lo, &hi))
            return bad_operand(r, at, k, z, (int)(i - 3) / 2, e);
    }
    const int64_t nc = t->n_consts;       /* the file's constants, the variables before z */
    t->n_consts = L->c[C_CONSTS];
    t->n_vars = z;
    const int ok = tp_block_valid(t, op, q + 1, (n - 3) / 2);
    t->n_consts = nc;
    if (!ok)
        return fail(e, "operation %" PRId64 " (%s) is not a valid array operation: its result "
                    "count is not its shape's size, an operand block reaches past the variables "
                    "before it or the constants, or its shapes or attribute break %s's rules",
                    k, name, name);
    if (op == TP_OP_MAP && tp_op_kind[q[3]] == TP_KIND_GUARD)   /* a block comparison */
        return block_comparison(t, q + 1, k, z, bcmp, n_bcmp, e);
    return TP_OK;
}

/* The shape table: each shape's words in range (tp_shape_valid) and the words all used. */
static int load_shapes(tp_tape *t, const uint8_t *b, const layout_t *L, err_t *e)
{
    const int64_t ns = L->c[C_SHAPES], nw = L->c[C_SHAPEW];
    if (nw) memcpy(t->shp, b + L->at[C_SHAPEW], (size_t)(8 * nw));
    int64_t at = 0;
    for (int64_t id = 0; id < ns; id++) {
        const int64_t nd = at < nw ? t->shp[at] : -1;
        if (nd < 0 || nd > TP_MAXDIM || 1 + 2 * nd > nw - at ||
            !tp_shape_valid(nd, t->shp + at + 1, t->shp + at + 1 + nd))
            return fail(e, "shape %" PRId64 " of the shape table is invalid (its dimensions, "
                        "strides or size out of range, or past the table's end)", id);
        t->shp_at[id] = at;
        at += 1 + 2 * nd;
    }
    if (at != nw)
        return fail(e, "the shape table has %" PRId64 " words; its %" PRId64 " shapes use %"
                    PRId64, nw, ns, at);
    t->n_shapes = ns; t->n_shp = nw;
    return TP_OK;
}

/* The index table: entries' word counts add up to its words, every word an index (>= 0). */
static int load_indices(tp_tape *t, const uint8_t *b, const layout_t *L, err_t *e)
{
    const int64_t ni = L->c[C_INDEX], nw = L->c[C_IXW];
    if (nw) memcpy(t->ixw, b + L->at[C_IXW], (size_t)(4 * nw));
    int64_t at = 0;
    for (int64_t i = 0; i < ni; i++) {
        const int64_t len = (int64_t)rd64(b + L->at[C_INDEX] + 8 * i);
        if (len < 0 || len > nw - at)
            return fail(e, "index table entry %" PRId64 " has %" PRId64 " words; %" PRId64
                        " are left", i, len, nw - at);
        t->ix_at[i] = at;
        at += len;
    }
    if (at != nw)
        return fail(e, "the index table has %" PRId64 " words; its %" PRId64 " entries use %"
                    PRId64, nw, ni, at);
    for (int64_t i = 0; i < nw; i++)
        if (t->ixw[i] < 0 || t->ixw[i] == INT32_MAX)
            return fail(e, "index table word %" PRId64 " is %d, not an index", i, t->ixw[i]);
    t->n_index = ni; t->n_ixw = nw;
    return TP_OK;
}

/* The recorded outputs of the primitive calls into t->vals (checked once swept). */
static void load_callvals(tp_tape *t, const uint8_t *b, const layout_t *L)
{
    if (!L->c[C_CALLVALS]) return;                /* no calls: no walk */
    const uint8_t *v = b + L->at[C_CALLVALS];
    walk_t w = {t->args, t->n_inputs};
    for (int64_t k = 0; k < t->n_ops; walk_next(&w, t->ops[k++]))
        if (t->ops[k] == TP_OP_CALL) {
            memcpy(t->vals + w.z, v, (size_t)(8 * w.p[1]));
            v += 8 * w.p[1];
        }
}

/* The operations: opcodes through the op table, operands decoded and checked, comparisons
 * listed, calls' result counts and recorded outputs; prims: the local id of each entry of the
 * file's primitive table. */
static int load_program(tp_tape *t, const uint8_t *b, const layout_t *L, const int32_t *prims,
                        int64_t *bcmp, int64_t *n_bcmp, err_t *e)
{
    const int64_t *c = L->c;
    int lut[256], rc;
    if ((rc = read_op_table(b, L, lut, e)) < 0) return rc;
    const uint8_t *fops = b + L->at[C_OPS];
    int8_t plain[256];         /* by file opcode: the arity of an op with plain operands, or 0 */
    for (int i = 0; i < 256; i++) {
        const int op = lut[i];
        plain[i] = (int8_t)(op >= 0 && tp_op_arity[op] != VARIADIC && tp_op_results[op] == 1 &&
                            tp_op_kind[op] <= TP_KIND_CUSTOM ? tp_op_arity[op] : 0);
    }
    reader_t r = {b + L->at[C_STREAM], b + L->at[C_STREAM] + c[C_STREAM], 0, c[C_CONSTS]};
    int64_t z = c[C_INPUTS], callvals_left = c[C_CALLVALS], blockvars_left = c[C_BLOCKVARS];
    for (int64_t k = 0; k < c[C_OPS]; k++) {
        if (plain[fops[k]] &&               /* the common case, in a tight loop of its own */
            ((rc = plain_run(&r, fops, lut, plain, t->ops, &k, &z, c[C_OPS], t->args, c[C_WORDS],
                             e)) < 0 || k == c[C_OPS])) {
            if (rc < 0) return rc;
            break;
        }
        int op = lut[fops[k]];
        if (op < 0)
            return fail(e, "operation %" PRId64 " has opcode %d; the op table has %" PRId64
                        " entries", k, fops[k], c[C_OPTABLE]);
        t->ops[k] = (uint8_t)op;
        int a = tp_op_arity[op];
        int64_t res = 1;
        int32_t *q = t->args + r.words;
        if (a != VARIADIC) {
            if (r.words + a > c[C_WORDS])
                return fail(e, "operation %" PRId64 " has operand words past the %" PRId64
                            " the header counts", k, c[C_WORDS]);
            for (int i = 0; i < a; i++)
                if ((rc = get_operand(&r, k, z, i, &q[i], e)) < 0) return rc;
            r.words += a;
        } else {
            uint64_t n;
            int64_t left = c[C_WORDS] - r.words - 2;
            if (get_varint(&r.p, r.end, &n) < 0)
                return fail(e, "the operand stream ends in the count of operation %" PRId64, k);
            if (n < 1 || n > INT32_MAX - 2 || left < 0 || n > (uint64_t)left)
                return fail(e, "operation %" PRId64 " (%s) counts %" PRIu64 " operand words: "
                            "none, or more than the operand words left", k, tp_op_name[op], n);
            q[0] = q[n + 1] = (int32_t)n;
            int i = 0;
            if (tp_op_kind[op] == TP_KIND_BLOCK) {
                if ((rc = load_block(t, &r, op, k, z, (int64_t)n, q, &blockvars_left, L, bcmp,
                                     n_bcmp, e)) < 0)
                    return rc;
                r.words += (int64_t)n + 2;
                z += q[1];
                continue;
            }
            if (tp_op_results[op] == VARIADIC) {          /* its result count, plain */
                uint64_t rr;
                if (get_varint(&r.p, r.end, &rr) < 0 || rr < 1 || rr > (uint64_t)callvals_left)
                    return fail(e, "operation %" PRId64 " (%s) has no valid result count (from "
                                "1 to the %" PRId64 " recorded call outputs left)", k,
                                tp_op_name[op], callvals_left);
                q[1 + i++] = (int32_t)rr;
                res = (int64_t)rr;
            }
            if (op == TP_OP_CALL) {                        /* its primitive: an index, plain */
                uint64_t pi;
                if (n < 2 || get_varint(&r.p, r.end, &pi) < 0 || pi >= (uint64_t)c[C_PRIMS])
                    return fail(e, "operation %" PRId64 " (CALL) names no primitive of the "
                                "file's table of %" PRId64, k, c[C_PRIMS]);
                q[1 + i++] = (int32_t)(-1 - (c[C_CONSTS] + (int64_t)pi));
                callvals_left -= res;           /* their values: load_callvals */
            }
            for (; i < (int)n; i++)
                if ((rc = get_operand(&r, k, z, i, &q[1 + i], e)) < 0) return rc;
            if (op == TP_OP_DOT && n % 2)
                return fail(e, "operation %" PRId64 " (DOT) has an odd number (%" PRIu64 ") of "
                            "operands", k, n);
            r.words += (int64_t)n + 2;
        }
        if (tp_op_kind[op] == TP_KIND_GUARD) {   /* its outcome: 0, 1 or NaN (unchecked) */
            int is_const;
            double w = const_value(t, q[2], &is_const);
            if (!is_const || !(w == 0.0 || w == 1.0 || w != w))
                return fail(e, "operation %" PRId64 " (%s) has a recorded outcome that is not "
                            "a constant 0, 1 or NaN", k, tp_op_name[op]);
            if ((rc = tp_grow((void **)&t->guards, &t->cap_guards, 3 * (t->n_guards + 1),
                              sizeof *t->guards, 3 * c[C_OPS])) < 0) return rc;
            int64_t *g = t->guards + 3 * t->n_guards++;
            g[0] = z; g[1] = q - t->args; g[2] = k;
        }
        z += res;
    }
    if (r.p != r.end)
        return fail(e, "%" PRId64 " bytes of the operand stream are left after the last "
                    "operation", (int64_t)(r.end - r.p));
    if (r.words != c[C_WORDS])
        return fail(e, "the operations have %" PRId64 " operand words; the header counts %"
                    PRId64, r.words, c[C_WORDS]);
    if (callvals_left)
        return fail(e, "the primitive calls have %" PRId64 " outputs; the header counts %"
                    PRId64, c[C_CALLVALS] - callvals_left, c[C_CALLVALS]);
    if (blockvars_left)
        return fail(e, "the array operations have %" PRId64 " results; the header counts %"
                    PRId64, c[C_BLOCKVARS] - blockvars_left, c[C_BLOCKVARS]);
    t->n_ops = c[C_OPS];
    t->n_args = r.words;
    t->n_vars = z;
    for (int64_t i = 0; i < c[C_PRIMS]; i++) {
        if (prims[i] < 0) return fail(e, "primitive %" PRId64 " has no id", i);
        t->vals[-1 - (c[C_CONSTS] + i)] = (double)prims[i];
    }
    return TP_OK;
}

/* The outcome constant of the comparison that made variable v, or -1: not a comparison. */
static int guard_outcome(const tp_tape *t, int64_t v, double *w)
{
    int64_t lo = 0, hi = t->n_guards - 1;
    while (lo <= hi) {
        int64_t mid = lo + (hi - lo) / 2, g = t->guards[3 * mid];
        if (g < v) lo = mid + 1;
        else if (g > v) hi = mid - 1;
        else { *w = t->vals[t->args[t->guards[3 * mid + 1] + 2]]; return 0; }
    }
    return -1;
}

/* v is a result of a block comparison that replays check (bcmp: first result, count; ascending;
 * a guard names its first result, a site any of them) */
static int checked_block(const int64_t *bcmp, int64_t n, int64_t v, int first)
{
    int64_t lo = 0, hi = n - 1;
    while (lo < hi) {                    /* the last one starting at or before v */
        int64_t mid = lo + (hi - lo + 1) / 2;
        if (bcmp[2 * mid] <= v) lo = mid; else hi = mid - 1;
    }
    return n && bcmp[2 * lo] <= v &&
           (first ? v == bcmp[2 * lo] : v < bcmp[2 * lo] + bcmp[2 * lo + 1]);
}

static int check_guard(const tp_tape *t, int64_t v, const char *what, int64_t i,
                       const int64_t *bcmp, int64_t n_bcmp, err_t *e)
{
    double w;
    if (checked_block(bcmp, n_bcmp, v, what[0] == 'b')) return TP_OK;   /* "branch guard" */
    if (v < 0 || v >= tp_nvars(t) || guard_outcome(t, v, &w) < 0)
        return fail(e, "%s %" PRId64 " is variable %" PRId64 ", which no comparison made", what,
                    i, v);
    if (w != 0.0 && w != 1.0)
        return fail(e, "%s %" PRId64 " is variable %" PRId64 ", a comparison never taken as a "
                    "branch (its outcome is NaN)", what, i, v);
    return TP_OK;
}

/* The rest: outputs, recorded inputs, guards and sites. */
static int load_data(tp_tape *t, const uint8_t *b, const layout_t *L, const int64_t *bcmp,
                     int64_t n_bcmp, err_t *e)
{
    const int64_t *c = L->c;
    int rc;
    if (c[C_OUTPUTS]) memcpy(t->outputs, b + L->at[C_OUTPUTS], (size_t)(4 * c[C_OUTPUTS]));
    for (int64_t i = 0; i < c[C_OUTPUTS]; i++)     /* a variable, or a constant of the file */
        if (t->outputs[i] >= 0 ? t->outputs[i] >= tp_nvars(t)
                               : -1 - (int64_t)t->outputs[i] >= c[C_CONSTS])
            return fail(e, "output %" PRId64 " refers to %s %" PRId64 ", which does not exist", i,
                        t->outputs[i] < 0 ? "constant" : "variable",
                        t->outputs[i] < 0 ? -1 - (int64_t)t->outputs[i] : t->outputs[i]);
    if (c[C_INPUTS]) memcpy(t->vals, b + L->at[C_INPUTS], (size_t)(8 * c[C_INPUTS]));
    const uint8_t *g = b + L->at[C_GUARDS];
    for (int64_t i = 0; i < c[C_GUARDS]; i++)
        if ((rc = check_guard(t, (int32_t)rd32(g + 4 * i), "branch guard", i, bcmp, n_bcmp,
                              e)) < 0) return rc;
    const uint8_t *s = b + L->at[C_SITES];
    for (int64_t i = 0; i < c[C_SITES]; i++) {
        int32_t v = (int32_t)rd32(s + 16 * i), frozen = (int32_t)rd32(s + 16 * i + 4),
                line = (int32_t)rd32(s + 16 * i + 8);          /* its file: saving.py checks */
        if ((rc = check_guard(t, v, "guard site", i, bcmp, n_bcmp, e)) < 0) return rc;
        if (frozen < -1 || frozen >= tp_nvars(t) || line < -1)
            return fail(e, "guard site %" PRId64 " has frozen variable %d and line %d", i,
                        frozen, line);
    }
    return TP_OK;
}

/* Room for n items of sz bytes, *cap: how many it holds. A block a freed tape left (recycle.c;
 * loading tape after tape faults no pages in), else malloc's, asking for huge pages when large:
 * a loaded tape's arrays are written once, at once, and 4 KB pages fault tens of thousands of
 * times (Linux with THP in madvise mode). tp_free gives the block back with *cap. */
static void *big_alloc(int64_t items, size_t sz, int64_t *cap)
{
    size_t n = (size_t)items * sz, got = n;
    void *p = tp_recycled(n, &got);
    if (!p) { p = malloc(n ? n : 1); got = n; }
    *cap = p ? (int64_t)(got / sz) : 0;
#ifdef MADV_HUGEPAGE
    const uintptr_t huge = (uintptr_t)2 << 20;
    if (p && n >= 4 * huge) {
        uintptr_t lo = ((uintptr_t)p + huge - 1) & ~(huge - 1);
        uintptr_t hi = ((uintptr_t)p + n) & ~(huge - 1);
        if (hi > lo) madvise((void *)lo, hi - lo, MADV_HUGEPAGE);    /* a hint: errors ignored */
    }
#endif
    return p;
}

/* Room for a file of n bytes that saving writes, *cap: its size; a block of recycle.c when one
 * fits. tp_buffer_release gives it back. */
uint8_t *tp_buffer(int64_t n, int64_t *cap) { return big_alloc(n, 1, cap); }
void tp_buffer_release(uint8_t *p, int64_t cap) { tp_recycle(p, (size_t)cap); }

/* Back to the empty tape tp_new makes. */
static void clear(tp_tape *t)
{
    free(t->ops); free(t->args); free(t->ckeys); free(t->cslot);
    tp_free_store(t); free(t->outputs); free(t->last_x); free(t->guards);
    free(t->shp); free(t->shp_at); free(t->shash); free(t->ixw); free(t->ix_at);
    memset(t, 0, sizeof *t);
}

/* Fills the new, empty tape t (of tp_new: never claimed) from a file's bytes and closes it;
 * prims: the local id of each primitive of the file's table (tapead/saving.py looks them up by
 * name). The values at recording are tp_load_values's. On failure t is empty again. */
int tp_load(tp_tape *t, const uint8_t *b, int64_t len, const int32_t *prims, int64_t n_prims,
            char *msg, int64_t cap)
{
    err_t e = {msg, cap};
    layout_t L;
    if (t->claimed || t->closed || t->n_ops || t->n_inputs || t->n_consts || t->ops)
        return TP_EARG;
    int rc = read_header(b, len, &L, 0, &e);
    if (rc < 0) return rc;
    const int64_t *c = L.c;
    if (n_prims != c[C_PRIMS]) return fail(&e, "%" PRId64 " primitive ids for a table of %"
                                           PRId64, n_prims, c[C_PRIMS]);
    int64_t nc = c[C_CONSTS] + c[C_PRIMS];
    t->ops = big_alloc(c[C_OPS], 1, &t->cap_ops);
    t->args = big_alloc(c[C_WORDS], sizeof *t->args, &t->cap_args);
    const int rs = tp_grow_store(t, nc, 0);        /* the values' room: once they are counted */
    t->last_x = big_alloc(c[C_INPUTS], sizeof *t->last_x, &t->cap_last);
    t->outputs = malloc((size_t)(c[C_OUTPUTS] ? c[C_OUTPUTS] : 1) * sizeof *t->outputs);
    t->shp = malloc((size_t)(c[C_SHAPEW] ? c[C_SHAPEW] : 1) * sizeof *t->shp);
    t->shp_at = malloc((size_t)(c[C_SHAPES] ? c[C_SHAPES] : 1) * sizeof *t->shp_at);
    t->ixw = malloc((size_t)(c[C_IXW] ? c[C_IXW] : 1) * sizeof *t->ixw);
    t->ix_at = malloc((size_t)(c[C_INDEX] ? c[C_INDEX] : 1) * sizeof *t->ix_at);
    if (!t->ops || !t->args || rs < 0 || !t->last_x || !t->outputs || !t->shp ||
        !t->shp_at || !t->ixw || !t->ix_at) {
        clear(t);
        return TP_ENOMEM;
    }
    t->cap_shp = c[C_SHAPEW]; t->cap_shapes = c[C_SHAPES];
    t->cap_ixw = c[C_IXW]; t->cap_index = c[C_INDEX];
    t->n_inputs = t->n_vars = c[C_INPUTS];
    t->n_consts = nc;
    t->n_outputs = c[C_OUTPUTS];
    for (int64_t k = 0; k < c[C_CONSTS]; k++)               /* by index: constant k at vals[-1-k] */
        memcpy(&t->vals[-1 - k], b + L.at[C_CONSTS] + 8 * k, 8);
    /* the values' room once the program is valid: its variables are counted then */
    int64_t *bcmp = malloc((size_t)(c[C_OPS] ? 2 * c[C_OPS] : 1) * sizeof *bcmp), n_bcmp = 0;
    if (!bcmp) { clear(t); return TP_ENOMEM; }
    if ((rc = load_shapes(t, b, &L, &e)) < 0 || (rc = load_indices(t, b, &L, &e)) < 0 ||
        (rc = load_program(t, b, &L, prims, bcmp, &n_bcmp, &e)) < 0 ||
        (rc = tp_grow_store(t, nc, t->n_vars)) < 0 ||
        (rc = load_data(t, b, &L, bcmp, n_bcmp, &e)) < 0) {
        free(bcmp);
        clear(t);
        return rc;
    }
    free(bcmp);
    load_callvals(t, b, &L);
    t->claimed = 1;
    tp_close(t);
    return TP_OK;
}

/* The first output of a primitive call that the sweep V disagrees with the recorded values in
 * t->vals about (the file's), as its variable; -1: none. NaNs agree with NaNs. */
static int64_t call_mismatch(const tp_tape *t, const double *V)
{
    if (!has_calls(t)) return -1;
    walk_t w = {t->args, t->n_inputs};
    for (int64_t k = 0; k < t->n_ops; walk_next(&w, t->ops[k++])) {
        if (t->ops[k] != TP_OP_CALL) continue;
        for (int64_t j = w.z; j < w.z + w.p[1]; j++)
            if (memcmp(&V[j], &t->vals[j], sizeof *V) &&
                !(V[j] != V[j] && t->vals[j] != t->vals[j])) return j;
    }
    return -1;
}

/* The values at recording: one primal sweep at the recorded inputs, which must keep every branch
 * guard's outcome and give each primitive call's recorded outputs (TP_EFILE otherwise; a
 * primitive's failure is TP_ECALLBACK). */
int tp_load_values(tp_tape *t, char *msg, int64_t cap)
{
    err_t e = {msg, cap};
    work_t w;
    double *V;
    int rc = work_begin(&w, t);
    if (rc < 0) return rc;
    rc = tp_primal_at(t, tp_last(t), &w, &V, NULL);
    int64_t bad = rc >= 0 ? call_mismatch(t, V) : -1;
    double was = bad >= 0 ? t->vals[bad] : 0.0, now = bad >= 0 ? V[bad] : 0.0;
    if (rc >= 0 && bad < 0) memcpy(t->vals, V, (size_t)tp_nvars(t) * sizeof *V);
    work_end(&w);
    memset(t->swept, 0, sizeof t->swept);
    if (rc == TP_EBRANCH) {
        int64_t var;
        double xy[2];
        tp_branch_info(&var, xy);
        return fail(&e, "the comparison at variable %" PRId64 " does not keep its recorded "
                    "outcome at the recorded inputs (operands %.17g and %.17g)", var, xy[0],
                    xy[1]);
    }
    if (bad >= 0)
        return fail(&e, "a primitive gives variable %" PRId64 " = %.17g at the recorded inputs, "
                    "not %.17g as when the tape was saved: was its function changed?", bad, now,
                    was);
    return rc;
}
