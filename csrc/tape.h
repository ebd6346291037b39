/* tapead C core: the interface Python sees. cffi parses this file (lines starting with '#' are
 * dropped for it), so it holds plain declarations only. Opcodes come from ops.def as TP_OP_NAME.
 * Every function that can fail returns a negative tp_status.
 *
 * Variables are numbered as a Wengert list: inputs 0 .. m-1, then each operation, in tape order,
 * writes a contiguous range of new variables (its results; the op's index is the first). How
 * many is its opcode's RESULTS column (tp_op_results: 1 for every scalar op) or, for an op whose
 * RESULTS is VARIADIC (CALL: a primitive's outputs), the count r stored with its operands. The
 * tape keeps no per-op offset: whoever needs "operation k -> its first variable" walks the ops
 * with a variable counter (every sweep does; tp_backward walks the prefix it replays), so the
 * storage stays one opcode byte plus the operand words per op.
 *
 * Operands (the stream tp_export gives), per op in tape order:
 *   fixed arity a:  q_1 .. q_a                      ADD: x, y
 *   VARIADIC:       n, w_1 .. w_n, n                SUM: n, x_1 .. x_n, n (the count at both
 *                                                   ends: sweeps walk either way)
 *   VARIADIC with VARIADIC results: w_1 = r, a plain count, the result count
 *                                                   CALL: k+2, r, id, x_1 .. x_k, k+2
 * Every other word is an operand code: >= 0 a variable, < 0 constant -1-code of the pool (a
 * CALL's id is its primitive's number as a constant).
 *
 * Block operations (ad.Array; ops.def's BLOCK rows), VARIADIC in arity and results:
 *     n, r, s, a, f_1, s_1, .., f_k, s_k, n          (n = 3 + 2k)
 * r results (variables iz .. iz+r-1, C order) of shape s, a an attribute (MAP: the scalar op
 * applied per element; REDUCE: the shape mapping x's index space into z's), then k block operands:
 * f the first element's operand code and s a shape id (dims and strides, in elements) into the
 * tape's shape table (tp_shape). A block of constants has ascending codes (tp_const_block), so
 * element offset o of any block is code f + o. A walker that only counts variables reads r and
 * skips n + 2 words without knowing the op.
 *   MAP     k = the scalar op's arity; each operand's dims are the result's (0 strides broadcast)
 *   MAP of a comparison (LT .. NE) k = 3: x, y and w, the outcomes at recording (a NaN scalar,
 *           broadcast: unchecked; tp_guard_block makes it a block of 0s and 1s: a branch guard
 *           checking every element); MAP of WHERE k = 3: z = y where x != 0 else w
 *   REDUCE  z[zmap(i)] += x[i] over x's index space; a = zmap's shape id (x's dims, z's strides)
 *   AMAX, AMIN, PROD  REDUCE's words: z[zmap(i)] the max, min or product of its x[i]
 *   MATMUL  two operands (.., m, p) and (.., p, q) with the same leading (batch) dims as z's
 *           (a broadcast batch axis has stride 0), z their (.., m, q) products
 *   PACK    z = every operand's elements in its C order, one after another (copies, transposes,
 *           slices, ad.asarray of scattered Vars)
 *   GATHER  z[e] = x[i_e]: x 1-d; a an index table entry of r words, each i_e < len(x)
 *   SCATTER z = x, then z[p_e] = y[s_e] for e < m: x 1-d of r elements, y 1-d; a an entry of 2m
 *           words p_0 .. p_m-1 (< r, strictly ascending: each position written once) then
 *           s_0 .. s_m-1 (< len(y))
 *   SCATTER_ADD  the same with z[p_e] += y[s_e], in order of e (positions may repeat)
 * The index table (gather.c) holds entries of int words by id (tp_indices); tp_rec_block checks
 * each word against the size it indexes, so a tape loader can check them the same way.
 */
#pragma once
#include <stdint.h>

typedef struct tp_tape tp_tape;

enum tp_status {
    TP_OK = 0,
    TP_ENOMEM = -1,     /* allocation failed */
    TP_ECLOSED = -2,    /* recording on a closed tape */
    TP_ETHREAD = -3,    /* tape used from a thread other than the one recording it */
    TP_ETOOBIG = -4,    /* more variables, constants or operands than the tape can index */
    TP_EARG = -5,       /* bad opcode, operand index or size */
    TP_EORDER = -6,     /* inputs declared after the first operation */
    TP_EBRANCH = -7,    /* a replay flipped a branch guard: see tp_branch_info */
    TP_ECALLBACK = -8,  /* a primitive's Python rule raised (tapead/primitive.py re-raises) */
    TP_ENORULE = -9,    /* a primitive has no rule for this sweep (second order, Taylor) */
    TP_EBUSY = -10,     /* recording on a tape that a sweep is replaying (a primitive's rule) */
    TP_ESTART = -11,    /* recording on a tape that no `with` block started */
    TP_EFILE = -12      /* a tape file is invalid: the loader's message says why */
};

extern const int tp_n_opcodes;
extern const char *const tp_op_name[];
extern const int tp_op_arity[];            /* -1: variadic */
extern const int tp_op_results[];          /* variables an op writes; -1: stored with operands */
extern const char *const tp_op_formula[];
extern const int tp_op_curvature[];        /* 0 linear, 1 bilinear, 2 nonlinear: Hessian sparsity */
enum tp_op_kind_t {                        /* ops.def's RULE column */
    TP_KIND_PARTIAL = 0,    /* tangent and adjoint from NAME_PARTIAL */
    TP_KIND_CUSTOM = 1,     /* NAME_TANGENT, NAME_ADJOINT, NAME_SECOND in rules.h */
    TP_KIND_GUARD = 2,      /* a comparison: no derivative; replays check its outcome */
    TP_KIND_PRIMITIVE = 3,  /* a user-defined primitive: rules are Python callables */
    TP_KIND_BLOCK = 4       /* an array operation (block.c, matmul.c) */
};
extern const int tp_op_kind[];

const void *tp_api(void);                  /* the typed table of core_api.h, for tapead._fast */

/* lifetime and recording */
tp_tape *tp_new(void);
void tp_free(tp_tape *t);
int tp_claim(tp_tape *t);                  /* the calling thread starts recording it (once) */
void tp_close(tp_tape *t);                 /* no more operations; the tape is immutable */
int tp_closed(const tp_tape *t);
int64_t tp_add_inputs(tp_tape *t, const double *x, int64_t n);      /* first index */
int32_t tp_rec1(tp_tape *t, int op, int32_t x);                     /* each returns the new index */
int32_t tp_rec2(tp_tape *t, int op, int32_t x, int32_t y);
int32_t tp_rec2vc(tp_tape *t, int op, int32_t x, double c);         /* y is the constant c */
int32_t tp_rec2cv(tp_tape *t, int op, double c, int32_t y);         /* x is the constant c */
int32_t tp_rec3(tp_tape *t, int op, int32_t x, int32_t y, int32_t w);
int32_t tp_recn(tp_tape *t, int op, const int32_t *args, int64_t n);
int32_t tp_rec_call(tp_tape *t, int prim, const int32_t *inputs, int64_t k, const double *y,
                    int64_t n);           /* a primitive's n outputs y: variables z .. z+n-1 */
int tp_const(tp_tape *t, double c, int32_t *code);                 /* operand code of c */
int tp_set_outputs(tp_tape *t, const int32_t *idx, int64_t n);
int tp_guard(tp_tape *t, int64_t var, int outcome);  /* comparison var becomes a branch guard */
int tp_guard_value(tp_tape *t, int32_t var, int32_t *guards);  /* guards var == its value */
int tp_comparison(const tp_tape *t, int64_t var, int *op, int32_t *operands, double *values);
/* var an element of a block comparison: its index idx and the comparison's dims (nd axes) */
int tp_comparison_element(const tp_tape *t, int64_t var, int *nd, int64_t *idx, int64_t *dims);

/* array blocks (blocktape.c): a shape id for nd dims and strides (deduplicated); n constants
 * appended as one block, *first the code of its element 0 (codes ascend); a block op over nb
 * operands (blocks: first, shape id each) with results of shape `shape` (returns the first) */
int32_t tp_shape(tp_tape *t, int nd, const int64_t *dims, const int64_t *strides);
int tp_const_block(tp_tape *t, const double *x, int64_t n, int32_t *first);
int32_t tp_rec_block(tp_tape *t, int op, int32_t attr, int32_t shape, const int32_t *blocks,
                     int64_t nb);
int tp_values(const tp_tape *t, int64_t first, int64_t n, double *out);  /* at recording */
int32_t tp_indices(tp_tape *t, const int64_t *idx, int64_t n);     /* index entry: its id */
int64_t tp_index_words(const tp_tape *t, int32_t id, int32_t *out);  /* its words (out: or NULL) */
int tp_guard_block(tp_tape *t, int64_t var);   /* block comparison at var: one branch guard */
int64_t tp_first_block(const tp_tape *t);   /* the first block op, or -1 */
/* a closed tape's native kernel (tapead/native.py: its code, compiled for this tape's program),
 * which batched forward and one-weight reverse sweeps call instead of interpreting the tape;
 * NULL: none. TP_EARG for an open tape. */
int tp_set_native(tp_tape *t, void *kernel);
int tp_has_native(const tp_tape *t);
int tp_set_dgemm(void *dgemm);   /* BLAS dgemm (Fortran ABI, LP64), or NULL: built-in kernel */
int tp_blas(void);               /* 1: matmul calls the BLAS dgemm */

/* into (new, empty) becomes a closed tape with t's outputs, guards and derivatives and fewer
 * operations (optimize.c). vars (n of t's variables) become theirs in the new tape, or -1;
 * stats: operations merged, folded, forwarded by identities, dead; operations before, after. */
int tp_optimize(tp_tape *t, tp_tape *into, int32_t *vars, int64_t n, int64_t *stats);

/* inspection */
int64_t tp_n_inputs(const tp_tape *t);
int64_t tp_n_ops(const tp_tape *t);
int64_t tp_n_vars(const tp_tape *t);                               /* inputs and results */
int64_t tp_n_args(const tp_tape *t);
int64_t tp_n_consts(const tp_tape *t);
int64_t tp_n_outputs(const tp_tape *t);
int tp_output_code(const tp_tape *t, int64_t i, int32_t *code);   /* output i: variable or constant */
int64_t tp_nbytes(const tp_tape *t);
double tp_value(const tp_tape *t, int64_t i);                      /* value at recording */
int tp_last_x(const tp_tape *t, double *x);                        /* input of the last sweep */
int tp_readable(const tp_tape *t);         /* 1 if this thread may read it (closed, or recording) */
int tp_export(const tp_tape *t, uint8_t *ops, int32_t *args, double *consts, int32_t *outputs);
int tp_op_counts(const tp_tape *t, int64_t *counts);               /* tp_n_opcodes entries */
void tp_swept(const tp_tape *t, int64_t *visits);  /* primal, tangent, adjoint, second, taylor */

/* sweeps: scratch belongs to the call; the GIL is released while they run.
 * xdot is m x k and ydot n x k (direction j of row i at i*k + j); likewise ybar, xbar.
 * xdot (ybar) NULL: the k = m (n) unit directions, a Jacobian's (a Hessian's) columns. */
int tp_forward(tp_tape *t, const double *x, double *y);
int tp_jvp(tp_tape *t, const double *x, int64_t k, const double *xdot, double *y, double *ydot);
int tp_vjp(tp_tape *t, const double *x, int64_t k, const double *ybar, double *y, double *xbar);
int tp_vjp_parts(tp_tape *t, int64_t np, const double *const *part, const int64_t *len,
                 int64_t k, const double *ybar, double *y, double *xbar);   /* x in np pieces */
/* adj: the adjoints of variables 0 .. n-1 (0 past root) */
int tp_backward(tp_tape *t, int64_t root, double seed, double *adj, int64_t n);
int tp_hvp(tp_tape *t, const double *x, const double *w, int64_t k, const double *xdot,
           double *y, double *g, double *hv);                    /* H(w.y) xdot, k directions */
int tp_taylor(tp_tape *t, const double *x, const double *v, int64_t order, double *y);
                                       /* y: n x (order+1) Taylor coefficients of f(x + t v) */
int tp_branch_info(int64_t *var, double *xy);   /* this thread's last flipped guard, operands */
int tp_inspect(tp_tape *t, const double *x, const double *v, const double *w, double *vals,
               double *tans, double *adjs, double *partials);     /* for traces and graphs */

/* sparse Jacobians (pattern.c, colour.c): the structural pattern as CSR over the outputs
 * (*indices allocated: tp_free_pattern), and a greedy distance-2 colouring of its columns */
int64_t tp_jac_pattern(tp_tape *t, int reverse, int64_t pass_bytes, int64_t *indptr,
                       int32_t **indices);
void tp_free_pattern(int32_t *indices);
int64_t tp_colour(int64_t nr, int64_t nc, const int64_t *rowptr, const int32_t *colidx,
                  const int64_t *colptr, const int32_t *rowidx, const uint8_t *use_row,
                  const uint8_t *use_col, const int64_t *order, int64_t budget, int32_t *colour);

/* saving and loading (serial.c; the format is described there and in docs/API.md). A loader
 * failure is TP_EFILE with a message in msg (cap bytes). */
uint64_t tp_checksum(const uint8_t *p, int64_t len);             /* XXH64, seed 0 */
int64_t tp_dump_prims(const tp_tape *t, int32_t *ids, int64_t cap);   /* primitive ids called */
int64_t tp_dump_bound(const tp_tape *t, int64_t n_guards, int64_t n_sites, int64_t n_meta,
                      int64_t n_fn);
int64_t tp_dump(const tp_tape *t, const int32_t *prims, int64_t n_prims, const int32_t *guards,
                int64_t n_guards, const int32_t *sites, int64_t n_sites, const uint8_t *meta,
                int64_t n_meta, const uint8_t *fn, int64_t n_fn, uint8_t *out);
int tp_load_header(const uint8_t *b, int64_t len, int64_t *info, char *msg, int64_t cap);
int tp_load(tp_tape *t, const uint8_t *b, int64_t len, const int32_t *prims, int64_t n_prims,
            char *msg, int64_t cap);                      /* fills t, new and empty (tp_new) */
int tp_load_values(tp_tape *t, char *msg, int64_t cap);    /* values at recording, recomputed */
uint8_t *tp_buffer(int64_t n, int64_t *cap);      /* room for a file to save (recycle.c) */
void tp_buffer_release(uint8_t *p, int64_t cap);
