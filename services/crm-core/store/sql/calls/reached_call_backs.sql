-- For each call-back about to be written open ($1 owner type, $2 owner id, $3 its latest missed
-- call's time, seconds since the epoch): the row's ordinal; the answered call already on its
-- record that makes it moot — answered (or else started or ended) after that missed call and not
-- in the future, the earliest such — its event ('': none) and responsible (0: nobody); and
-- whether the record holds an open call-back already, which the upsert folds this one into. A
-- missed call of unknown time (0) or timed in the future (taken as now) is made moot by nothing.
-- The writer reads it before the upsert, so that only a call-back still to be made, and not
-- folded into an open one, takes a queue's next turn; a moot one is given the answering call's
-- responsible.
-- The answered-call predicate is activities_answered_calls' (migration 0031) word for word, and
-- the order is its key: each row reads the index from its lower bound and stops at the first
-- entry, however many activities the record holds. The open call-back is found through the
-- unique index of open call-backs (activities_one_open_call_back).
SELECT x.i, coalesce(reached.origin_event_id, ''), coalesce(reached.responsible_user_id, 0),
  EXISTS (SELECT 1 FROM activities AS held
    WHERE held.owner_type = x.ot AND held.owner_id = x.o AND held.call_back AND NOT held.completed)
FROM unnest($1::text[], $2::bigint[], $3::bigint[]) WITH ORDINALITY AS x (ot, o, l, i)
  LEFT JOIN LATERAL (SELECT a.origin_event_id, a.responsible_user_id FROM activities AS a
    WHERE x.l > 0 AND x.l < extract(epoch FROM now())
      AND a.owner_type = x.ot AND a.owner_id = x.o
      AND a.type = 'CALL' AND NOT a.call_back AND a.call_outcome = 'ANSWERED'
      AND a.origin_event_id IS NOT NULL
      AND coalesce(a.call_answered_at, a.call_started_at, a.call_ended_at) > to_timestamp(x.l)
      AND coalesce(a.call_answered_at, a.call_started_at, a.call_ended_at) <= now()
    ORDER BY coalesce(a.call_answered_at, a.call_started_at, a.call_ended_at), a.id
    LIMIT 1) AS reached ON true
