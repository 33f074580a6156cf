-- Back to 0008's body (no VC code).

CREATE OR REPLACE FUNCTION ccvec.canonical_order(p_prefer text[]) RETURNS text
LANGUAGE plpgsql IMMUTABLE AS $$
DECLARE
    key text;
    parts text[] := '{}';
BEGIN
    FOREACH key IN ARRAY p_prefer LOOP
        parts := parts || CASE key
            WHEN 'original'  THEN 'derived ASC'
            WHEN 'largest'   THEN 'pixels DESC'
            WHEN 'pixels'    THEN 'pixels DESC'
            WHEN 'provider'  THEN 'provider_rank ASC'
            WHEN 'oldest'    THEN 'created_on ASC NULLS LAST'
            WHEN 'newest'    THEN 'created_on DESC NULLS LAST'
            ELSE NULL END;
        IF parts[cardinality(parts)] IS NULL THEN
            RAISE EXCEPTION 'unknown canonical preference %, use original, largest, provider, oldest or newest', key;
        END IF;
    END LOOP;
    RETURN array_to_string(parts || 'node'::text, ', ');
END $$;
