-- Back to 0014's ccvec.novelty_reference_set (no model check).

DROP FUNCTION ccvec.novelty_reference_images(text, text, text, uuid[]);

CREATE OR REPLACE FUNCTION ccvec.novelty_reference_set(p_name text, p_model text, p_reference text,
                                            p_where text, p_value text)
RETURNS SETOF uuid
LANGUAGE plpgsql AS $$
BEGIN
    DELETE FROM ccvec.novelty_model WHERE name = p_name;
    INSERT INTO ccvec.novelty_model (name, model, reference, k)
    VALUES (p_name, p_model, p_reference, trunc(ccvec.setting('novelty.k'))::integer);
    IF p_where = 'source' THEN
        INSERT INTO ccvec.novelty_reference (name, identifier)
        SELECT p_name, m.identifier FROM (
            SELECT identifier FROM ccvec.catalog WHERE source = p_value
            UNION SELECT i.identifier FROM ccvec.image i WHERE i.meta_data ->> 'source' = p_value) m
        JOIN ccvec.image_embedding e ON e.identifier = m.identifier AND e.model = p_model;
    ELSIF p_where = 'provider' THEN
        INSERT INTO ccvec.novelty_reference (name, identifier)
        SELECT p_name, m.identifier FROM (
            SELECT identifier FROM ccvec.catalog WHERE provider = p_value) m
        JOIN ccvec.image_embedding e ON e.identifier = m.identifier AND e.model = p_model;
    ELSIF p_where = 'tag' THEN
        INSERT INTO ccvec.novelty_reference (name, identifier)
        SELECT p_name, m.identifier FROM (
            SELECT c.identifier FROM ccvec.catalog c, jsonb_array_elements(CASE WHEN
            jsonb_typeof(c.tags) = 'array' THEN c.tags ELSE '[]' END) t
            WHERE lower(t ->> 'name') = lower(p_value)) m
        JOIN ccvec.image_embedding e ON e.identifier = m.identifier AND e.model = p_model;
    END IF;
    RETURN QUERY SELECT r.identifier FROM ccvec.novelty_reference r WHERE r.name = p_name;
END $$;
