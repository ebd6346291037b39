/* The table of core functions for tapead._fast (core_api.h). */
#include "core_api.h"
#include "tape_impl.h"              /* tp_may_record */

static const tp_core_api api = {
    .tape_new = tp_new, .tape_free = tp_free, .claim = tp_claim, .close = tp_close,
    .closed = tp_closed, .add_inputs = tp_add_inputs, .rec1 = tp_rec1, .rec2 = tp_rec2,
    .rec2vc = tp_rec2vc, .rec2cv = tp_rec2cv, .rec3 = tp_rec3, .konst = tp_const,
    .set_outputs = tp_set_outputs, .guard = tp_guard, .value = tp_value, .n_ops = tp_n_ops,
    .forward = tp_forward, .vjp = tp_vjp, .shape = tp_shape, .rec_block = tp_rec_block,
    .vjp_parts = tp_vjp_parts, .may_record = tp_may_record,
};

const void *tp_api(void) { return &api; }
