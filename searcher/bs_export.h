/*
 * bs_export.h - `bitscout export`: the deployable ONNX model of a precision assignment.
 *
 * bs_export_model() rewrites an ONNX model so that every weight layer (Conv, ConvTranspose,
 * Gemm, MatMul with a constant weight; named as common/bs_model.h names them) carries the
 * precision the assignment gives it, in standard ONNX operators that any runtime reads:
 *   w32      the float weight, unchanged;
 *   w16      a FLOAT16 initializer (the engine's own fp16 rounding) and a Cast to float;
 *   w8..w2   an INT8 initializer of the engine's codes (within +-(2^(bits-1)-1)) and a
 *            per-output-channel DequantizeLinear with the engine's scales (zero points 0);
 *   a8       a QuantizeLinear -> DequantizeLinear pair (uint8, per tensor, from the calibration
 *            table) on the layer's input, one pair per tensor; with integer weights the bias
 *            also becomes INT32 at scale sx * sw[n] behind a DequantizeLinear: the QDQ form
 *            ONNX Runtime fuses into QLinearConv / QGemm / MatMulInteger.
 * The values are those the engine computes with (bs_quant.h), bit for bit, so the exported
 * model is the one the search measured. bs_export_main() is the subcommand: it reads the
 * campaign file (model, calibration data, preprocessing, "quantization"), takes the
 * assignment from --precision or from a stored evaluation (--db, --campaign, --eval),
 * calibrates when a layer has a8, and writes --out atomically (a temporary file renamed).
 */
#ifndef BS_EXPORT_H
#define BS_EXPORT_H

#include <stddef.h>

#include "bs_error.h"
#include "bs_graph.h"
#include "bs_run.h"

/* The default-domain opset of an exported model with integer weights (per-axis
 * DequantizeLinear); models at 11 or 12 are raised to it when their operators allow. */
#define BS_EXPORT_OPSET 13

/* What an export did. Strings are owned (bs_export_info_free). */
typedef struct bs_export_info {
    char *assignment;   /* the canonical assignment, also in metadata "bitscout.precision" */
    char *notes;        /* one line per note (layer kept float, opset raised, ...); "" if none */
    int n_layers;       /* weight layers in the model */
    int n_int;          /* layers exported with integer weights */
    int n_f16;          /* layers exported with fp16 weights */
    int n_a8;           /* layers with a QDQ pair on their input */
    int n_bn_folded;    /* BatchNormalizations folded into a quantized Conv (as the engine
                           does before quantizing) */
    size_t bytes;       /* size of the written model */
} bs_export_info_t;

void bs_export_info_free(bs_export_info_t *info); /* NULL-safe; zeroes *info */

/* Rewrites the model in buf (base_dir: where its external data files are) at `assignment`
 * (a precision spec or canonical assignment; NULL or "": all w32a32). q: NULL for defaults;
 * only q->wscale_minmax is read. act: calibration (bs_run_calibrate); required, with an entry
 * for the input tensor of every a8 layer, when any layer has a8. *out (caller's, bs_free) and
 * *out_len receive the serialized model; info may be NULL. Errors: BS_EINVAL (bad spec,
 * unknown layer: the message lists the valid names; missing calibration entry), BS_EMODEL
 * (malformed model, naming the node or tensor), BS_EUNSUPPORTED (what ONNX cannot express or
 * the model's opset forbids, naming the layer), BS_ETOOBIG (past 2 GB), BS_ENOMEM. */
int bs_export_buffer(const void *buf, size_t len, const char *base_dir, const char *assignment,
                     const bs_quant_opts_t *q, const bs_act_table_t *act, void **out,
                     size_t *out_len, bs_export_info_t *info, bs_err_t *err);

/* The same from model_path to out_path, written to out_path.tmp and renamed: nothing is left
 * at out_path on failure. err names the file. */
int bs_export_model(const char *model_path, const char *assignment, const bs_quant_opts_t *q,
                    const bs_act_table_t *act, const char *out_path, bs_export_info_t *info,
                    bs_err_t *err);

/* The assignment of evaluation eval_id of campaign `campaign` in the results database at
 * db_path (opened read-only), *assignment the caller's (bs_free). When model_sha256 is not
 * NULL it must equal the campaign's model hash (else BS_EINVAL saying so). BS_ENOENT when the
 * campaign or the evaluation does not exist; the message names what does. */
int bs_export_eval_assignment(const char *db_path, const char *campaign, long long eval_id,
                              const char *model_sha256, char **assignment, bs_err_t *err);

/* `bitscout export ...` (argv[0] is "export"). Returns the exit status: 0, 1 failure,
 * 2 usage. */
int bs_export_main(int argc, char **argv);

#endif
