DROP FUNCTION IF EXISTS ccvec.missing_catalog_rows(uuid[]);
