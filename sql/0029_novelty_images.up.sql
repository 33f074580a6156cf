-- A novelty reference set given as images (`ccvec novelty fit NAME --reference FOLDER`): the
-- images a folder or manifest holds, for collections loaded from folders, which have no catalog
-- `source`, provider or tags to select them by. Both ways of fitting now check the model first: an
-- unregistered one is one VC002 line, not a foreign-key violation.

CREATE OR REPLACE FUNCTION ccvec.novelty_reference_set(p_name text, p_model text, p_reference text,
                                            p_where text, p_value text)
RETURNS SETOF uuid
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM ccvec.model_dim(p_model);  -- VC002 'no model named …' rather than a foreign-key error
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

CREATE FUNCTION ccvec.novelty_reference_images(p_name text, p_model text, p_reference text, p_ids uuid[])
RETURNS SETOF uuid
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM ccvec.novelty_reference_set(p_name, p_model, p_reference, 'images', NULL);  -- the model row
    INSERT INTO ccvec.novelty_reference (name, identifier)
    SELECT DISTINCT p_name, e.identifier FROM ccvec.image_embedding e
    WHERE e.model = p_model AND e.identifier = ANY (p_ids);
    RETURN QUERY SELECT r.identifier FROM ccvec.novelty_reference r WHERE r.name = p_name;
END $$;
COMMENT ON FUNCTION ccvec.novelty_reference_images(text, text, text, uuid[]) IS
    '(Re)create novelty model p_name (k = setting novelty.k) with the images p_ids that have an embedding of model p_model as its reference set; p_reference describes them (e.g. the folder). Returns the members'' identifiers.';
