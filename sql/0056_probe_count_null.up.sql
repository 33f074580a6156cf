-- 0052's ccvec.mih_probe_count counted a NULL weight as the whole chunk (CASE ... ELSE width), so
-- ('{16}', '{NULL}') gave 2^16 probes, and arrays of different lengths (unnest pads the shorter
-- with NULLs) counted the unweighted chunks in full; its comment says a NULL probes nothing.
-- (least() alone would skip the NULL, and a NULL width with a huge weight would count for ever.)
CREATE OR REPLACE FUNCTION ccvec.mih_probe_count(p_widths integer[], p_weights integer[])
 RETURNS bigint
 LANGUAGE sql
 IMMUTABLE PARALLEL SAFE
AS $function$
    SELECT coalesce(sum(ccvec.binomial(u.w, k)), 0)::bigint
    FROM unnest(p_widths, p_weights) AS u(w, t),
         generate_series(0, CASE WHEN u.w IS NULL OR u.t IS NULL THEN NULL ELSE least(u.t, u.w) END) AS k
$function$;
