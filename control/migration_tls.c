/* migration_tls.c — TLS for the outgoing migration: when tls-creds is set,
 * every channel connect_channels() opens (main, then each multifd one) is
 * wrapped in a TLS client session before anything is sent. The credentials
 * are looked up and loaded per channel, as QEMU's migration_tls_get_creds()
 * does. Migration thread. */
#include "control/migration_tls.h"

#include <string.h>

#include "control/migcfg.h"
#include "control/migd.h"
#include "control/migration_priv.h"
#include "control/objects.h"
#include "socket/channel.h"
#include "socket/tls.h"
#include "util/log.h"

/* QEMU's rule: tls-hostname when set, else the host of the URI. */
static const char *tls_hostname(struct migration *m)
{
	const char *h = mig_config_param_str(m->cfg, MIG_PARAM_TLS_HOSTNAME);

	if (h[0])
		return h;
	if ((m->addr.kind == MIG_ADDR_TCP || m->addr.kind == MIG_ADDR_RDMA) &&
	    m->addr.host && m->addr.host[0])
		return m->addr.host;
	return NULL;
}

struct channel *migration_tls_wrap(struct migration *m, struct channel *ch,
				   struct mig_error **errp)
{
	const char *id = mig_config_param_str(m->cfg, MIG_PARAM_TLS_CREDS);
	struct tls_session_opts o = {.hostname = tls_hostname(m)};
	struct tls_ctx *c;
	struct channel *t;

	if (!ch || !mig_config_tls_enabled(m->cfg))
		return ch;
	c = mig_objects_load_tls(m->md->objects, id, false, errp);
	if (!c) {
		chan_close(ch);
		return NULL;
	}
	t = tls_channel_new(c, ch, &o, errp);
	tls_ctx_unref(c);
	if (t)
		log_info("migration: TLS to %s (%s)", t->desc,
			 tls_channel_cipher(t));
	return t;
}
