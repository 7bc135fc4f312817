#ifndef SYNCWRIGHT_CLDAP_SHIM_H
#define SYNCWRIGHT_CLDAP_SHIM_H
#include <lber.h>
#include <ldap.h>
#endif
