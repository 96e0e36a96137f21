/* SPDX-License-Identifier: Apache-2.0 */
/*
 * trail.c: the domain's audit hooks (see trail.h), on top of audit/audit.h
 * and the region's data store, which holds the log. It turns a struct trail
 * into an audit event (an object's name hash into the log's own object
 * hash) and nothing else; the log decides the bytes.
 *
 * Ownership: nothing is kept; every argument is borrowed for the call.
 * Thread-safety: as audit.h.
 */
#include "base/common.h"

#include "base/log.h"
#include "core/trail.h"

static int
event_of(struct region *r, const struct trail *t, struct audit_event *ev,
         uint8_t obj[AUDIT_HASH_LEN])
{
    memset(ev, 0, sizeof(*ev));
    ev->actor = t->actor;
    ev->action = t->action;
    ev->account = t->account;
    ev->service = t->service;
    ev->result = t->result;
    if (!t->object_hash)
        return 0;
    int rc = audit_object_hash(region_audit(r), obj, SLICE(t->object_hash, STORE_HASH_LEN));
    if (!rc)
        ev->object = obj;
    return rc;
}

int
trail_add(struct region *r, struct store_batch *b, const struct trail *t)
{
    struct audit_event ev;
    uint8_t obj[AUDIT_HASH_LEN];
    int rc = event_of(r, t, &ev, obj);
    return rc ? rc : audit_add(region_audit(r), b, &ev);
}

int
trail_commit(struct region *r, struct store_batch *b, bool durable)
{
    return audit_commit(region_audit(r), b, durable);
}

int
trail_record(struct region *r, const struct trail *t, bool durable)
{
    struct audit_event ev;
    uint8_t obj[AUDIT_HASH_LEN];
    int rc = event_of(r, t, &ev, obj);
    return rc ? rc : audit_record(region_audit(r), &ev, durable);
}

void
trail_refused(struct region *r, const struct trail *t)
{
    int rc = trail_record(r, t, false);
    if (rc)
        log_warn("event=audit_refusal_not_recorded action=%s err=\"%s\"", t->action, err_str(rc));
}
