/* placeholder: being written */
typedef int bs__placeholder_t;
