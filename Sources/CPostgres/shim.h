#ifndef SYNCWRIGHT_CPOSTGRES_SHIM_H
#define SYNCWRIGHT_CPOSTGRES_SHIM_H
#include <libpq-fe.h>
#endif
