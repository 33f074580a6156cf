-- A catalog row deleted after its image was embedded: a load of the same source writes it again.
CREATE FUNCTION ccvec.missing_catalog_rows(p_ids uuid[])
RETURNS SETOF uuid
LANGUAGE sql STABLE AS $$
    SELECT id FROM unnest(p_ids) AS id
    WHERE NOT EXISTS (SELECT 1 FROM ccvec.image i WHERE i.identifier = id);
$$;
COMMENT ON FUNCTION ccvec.missing_catalog_rows(uuid[]) IS
    'Which of these identifiers have no row in ccvec.image: images a load found embedded already whose catalog row was deleted since; the load fetches them again and writes the row (features and embedding stay as they are).';
