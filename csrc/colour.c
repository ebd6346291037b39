/* Greedy distance-2 colouring of a sparsity pattern's columns (Curtis-Powell-Reid, as CppAD's
 * sparse_jacobian): columns of one colour share no row, so one tangent direction, the sum of
 * their unit vectors, gives all their entries at once. Rows are coloured by passing the
 * transposed pattern. */
#include <stdlib.h>
#include "tape_impl.h"

/* colour[c] for the nc columns of an nr x nc pattern given as CSR (rowptr, colidx) and CSC
 * (colptr, rowidx), in the given order (NULL: 0 .. nc-1): the least colour no column sharing a
 * row with c has. Only rows with use_row[r] count as shared (NULL: all); columns without
 * use_col[c] get -1 (NULL: all coloured). Returns the number of colours, or TP_ETOOBIG,
 * colouring nothing, when more than budget row entries would be visited. */
int64_t tp_colour(int64_t nr, int64_t nc, const int64_t *rowptr, const int32_t *colidx,
                  const int64_t *colptr, const int32_t *rowidx, const uint8_t *use_row,
                  const uint8_t *use_col, const int64_t *order, int64_t budget, int32_t *colour)
{
    (void)nr;
    int64_t *mark = malloc((size_t)(nc + 1) * sizeof *mark), ncolours = 0, work = 0;
    if (!mark) return TP_ENOMEM;
    for (int64_t c = 0; c <= nc; c++) mark[c] = -1;
    for (int64_t c = 0; c < nc; c++) colour[c] = -1;
    for (int64_t k = 0; k < nc; k++) {
        int64_t c = order ? order[k] : k;
        if (use_col && !use_col[c]) continue;
        for (int64_t a = colptr[c]; a < colptr[c + 1]; a++) {
            int32_t r = rowidx[a];
            if (use_row && !use_row[r]) continue;
            work += rowptr[r + 1] - rowptr[r];
            if (work > budget) {
                for (int64_t j = 0; j < nc; j++) colour[j] = -1;
                free(mark);
                return TP_ETOOBIG;
            }
            for (int64_t b = rowptr[r]; b < rowptr[r + 1]; b++)
                if (colour[colidx[b]] >= 0) mark[colour[colidx[b]]] = c;
        }
        int32_t least = 0;
        while (mark[least] == c) least++;
        colour[c] = least;
        if (least + 1 > ncolours) ncolours = least + 1;
    }
    free(mark);
    return ncolours;
}
