-- Back to 0052's ccvec.mih_probe_count (a NULL weight counted as the whole chunk).
CREATE OR REPLACE FUNCTION ccvec.mih_probe_count(p_widths integer[], p_weights integer[])
 RETURNS bigint
 LANGUAGE sql
 IMMUTABLE PARALLEL SAFE
AS $function$
    SELECT coalesce(sum(ccvec.binomial(u.w, k)), 0)::bigint
    FROM unnest(p_widths, p_weights) AS u(w, t),
         generate_series(0, CASE WHEN u.t <= u.w THEN u.t ELSE u.w END) AS k
$function$;
