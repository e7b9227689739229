/*
 * bs_space.c - the search space: the campaign's rules applied to the model's layers.
 *
 * Every weight-bearing layer of the model (graph order) starts with one choice, w32a32. The
 * rules of the campaign's search_space are applied in order; a rule replaces the choices of
 * every layer whose name equals its pattern or matches it as a glob with the cross product of
 * its weight and activation precisions, in the order the file lists them (for each weight, for
 * each activation). Later rules therefore override earlier ones, and a rule that matches no
 * layer is a configuration error that lists the model's layer names.
 *
 * bs_space_to_json() is the space's identity in the database: compact JSON with the layers in
 * graph order and each layer's choices in rule order, so the same campaign and model always
 * give byte-identical text.
 */
#include "bs_config.h"

#include <stdio.h>
#include <string.h>

#include "bs_alloc.h"
#include "bs_util.h"

#define S_NAMES_SHOWN 360 /* bytes of layer names an error message lists before "..." */

static int s_oom(const bs_config_t *cfg, bs_err_t *err)
{
    return bs_err_set(err, BS_ENOMEM, "%s: out of memory building the search space",
                      cfg->path ? cfg->path : "(campaign)");
}

/* "conv1, conv2, fc" (cut with ", ... (N layers)" when long); caller frees. */
static char *s_layer_list(const bs_model_info_t *model)
{
    bs_buf_t b = {0};
    int i = 0;
    for (; i < model->n_layers; i++) {
        if (b.len > S_NAMES_SHOWN)
            break;
        bs_buf_printf(&b, "%s%s", i ? ", " : "", model->layers[i].name);
    }
    if (i < model->n_layers)
        bs_buf_printf(&b, ", ... (%d layers in all)", model->n_layers);
    if (model->n_layers == 0)
        bs_buf_printf(&b, "(none: the model has no weight-bearing layer)");
    if (b.oom) {
        bs_buf_free(&b);
        return NULL;
    }
    return b.data;
}

int bs_space_build(const bs_config_t *cfg, const bs_model_info_t *model, bs_space_t *out,
                   bs_err_t *err)
{
    if (!cfg || !model || !out || model->n_layers < 0 || (model->n_layers && !model->layers))
        return bs_err_set(err, BS_EINVAL, "bs_space_build: bad arguments");
    memset(out, 0, sizeof *out);
    bs_space_t s = {0};
    int n = model->n_layers;
    s.layers = bs_calloc((size_t)(n ? n : 1), sizeof *s.layers);
    s.names = bs_calloc((size_t)(n ? n : 1), sizeof *s.names);
    if (!s.layers || !s.names) {
        bs_space_free(&s);
        return s_oom(cfg, err);
    }
    for (int i = 0; i < n; i++) {
        const bs_layer_info_t *li = &model->layers[i];
        bs_space_layer_t *l = &s.layers[i];
        s.n_layers = i + 1;
        l->name = bs_strdup(li->name ? li->name : "");
        l->op_type = bs_strdup(li->op_type ? li->op_type : "");
        if (!l->name || !l->op_type) {
            bs_space_free(&s);
            return s_oom(cfg, err);
        }
        l->n_params = li->n_params;
        l->n_choices = 1;
        l->choices[0] = BS_PREC_FP32;
        s.names[i] = l->name;
    }
    for (int r = 0; r < cfg->n_rules; r++) {
        const bs_space_rule_t *rule = &cfg->rules[r];
        int matched = 0;
        for (int i = 0; i < n; i++) {
            bs_space_layer_t *l = &s.layers[i];
            if (strcmp(rule->match, l->name) != 0 && !bs_glob_match(rule->match, l->name))
                continue;
            int k = 0;
            for (int w = 0; w < rule->n_w; w++)
                for (int a = 0; a < rule->n_a && k < BS_MAX_CHOICES; a++)
                    l->choices[k++] = (bs_prec_t){rule->w[w], rule->a[a]};
            l->n_choices = k;
            matched++;
        }
        if (!matched) {
            char *list = s_layer_list(model);
            if (!list) {
                bs_space_free(&s);
                return s_oom(cfg, err);
            }
            bs_err_set(err, BS_ECONFIG,
                       "%s: search_space[%d].layers: \"%.100s\" matches no layer; the model's "
                       "layers are: %s", cfg->path ? cfg->path : "(campaign)", r, rule->match,
                       list);
            bs_free(list);
            bs_space_free(&s);
            return BS_ECONFIG;
        }
    }
    *out = s;
    return 0;
}

void bs_space_free(bs_space_t *s)
{
    if (!s)
        return;
    for (int i = 0; s->layers && i < s->n_layers; i++) {
        bs_free(s->layers[i].name);
        bs_free(s->layers[i].op_type);
    }
    bs_free(s->layers);
    bs_free((void *)s->names);
    memset(s, 0, sizeof *s);
}

double bs_space_size(const bs_space_t *s)
{
    double size = 1;
    for (int i = 0; s && i < s->n_layers; i++)
        size *= s->layers[i].n_choices;
    return size;
}

char *bs_space_to_json(const bs_space_t *s)
{
    if (!s)
        return NULL;
    cJSON *arr = cJSON_CreateArray();
    if (!arr)
        return NULL;
    for (int i = 0; i < s->n_layers; i++) {
        const bs_space_layer_t *l = &s->layers[i];
        cJSON *o = cJSON_CreateObject();
        if (!o)
            goto oom;
        cJSON_AddItemToArray(arr, o);
        cJSON *choices;
        if (!cJSON_AddStringToObject(o, "name", l->name) ||
            !cJSON_AddStringToObject(o, "op", l->op_type) ||
            !cJSON_AddNumberToObject(o, "params", (double)l->n_params) ||
            !(choices = cJSON_AddArrayToObject(o, "choices")))
            goto oom;
        for (int k = 0; k < l->n_choices; k++) {
            char text[BS_PREC_TEXT_MAX];
            bs_prec_format(l->choices[k], text);
            cJSON *str = cJSON_CreateString(text);
            if (!str)
                goto oom;
            cJSON_AddItemToArray(choices, str);
        }
    }
    char *json = cJSON_PrintUnformatted(arr);
    cJSON_Delete(arr);
    return json;
oom:
    cJSON_Delete(arr);
    return NULL;
}
