-- For each call-back about to be written open ($1 owner type, $2 owner id, $3 its latest missed
-- call's time, seconds since the epoch), the answered call already on its record that makes it
-- moot: answered (or else started or ended) after that missed call and not in the future, the
-- earliest such. Returns the row's ordinal, that call's event and responsible (0: nobody); rows
-- with none are left out. A missed call of unknown time (0) or timed in the future (taken as now)
-- decides nothing. The writer reads it before the upsert, so that such a call-back is given the
-- answering call's responsible instead of a queue's next turn.
-- The predicate on activities is activities_answered_calls' (migration 0031) word for word, and
-- the order is its key: each row reads the index from its lower bound and stops at the first
-- entry, however many activities the record holds.
SELECT x.i, reached.origin_event_id, coalesce(reached.responsible_user_id, 0)
FROM unnest($1::text[], $2::bigint[], $3::bigint[]) WITH ORDINALITY AS x (ot, o, l, i)
  CROSS JOIN LATERAL (SELECT a.origin_event_id, a.responsible_user_id FROM activities AS a
    WHERE a.owner_type = x.ot AND a.owner_id = x.o
      AND a.type = 'CALL' AND NOT a.call_back AND a.call_outcome = 'ANSWERED'
      AND a.origin_event_id IS NOT NULL
      AND coalesce(a.call_answered_at, a.call_started_at, a.call_ended_at) > to_timestamp(x.l)
      AND coalesce(a.call_answered_at, a.call_started_at, a.call_ended_at) <= now()
    ORDER BY coalesce(a.call_answered_at, a.call_started_at, a.call_ended_at), a.id
    LIMIT 1) AS reached
WHERE x.l > 0 AND x.l < extract(epoch FROM now())
