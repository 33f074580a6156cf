DROP TABLE IF EXISTS ccvec.load_error;
DROP TABLE IF EXISTS ccvec.load_run;
DROP TABLE IF EXISTS ccvec.image_embedding;
DROP FUNCTION IF EXISTS ccvec.check_embedding_dim();
DROP TABLE IF EXISTS ccvec.image_feature;
DROP TABLE IF EXISTS ccvec.model;
DROP FUNCTION IF EXISTS ccvec.use_catalog(regclass);
DROP VIEW IF EXISTS ccvec.catalog;
DROP TABLE IF EXISTS ccvec.image;
-- The schema itself stays: it holds alembic's version table.
