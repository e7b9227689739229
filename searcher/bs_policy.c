/*
 * bs_policy.c - the registry of search policies. Adding a policy is one line here plus its
 * bs_policy_ops_t in its own file.
 */
#include "bs_policy.h"

#include <string.h>

static const bs_policy_ops_t *const s_policies[] = {&bs_policy_random, &bs_policy_nsga2,
                                                    &bs_policy_haq, &bs_policy_sens};

const bs_policy_ops_t *bs_policy_find(const char *name)
{
    for (size_t i = 0; name && i < sizeof s_policies / sizeof s_policies[0]; i++)
        if (strcmp(s_policies[i]->name, name) == 0)
            return s_policies[i];
    return NULL;
}

const char *bs_policy_names_list(void)
{
    return "random, nsga2, haq, sensitivity";
}
