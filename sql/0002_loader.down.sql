DROP FUNCTION IF EXISTS ccvec.missing_embeddings(text, uuid[]);
DROP FUNCTION IF EXISTS ccvec.ingest_batch(text, boolean);
DROP FUNCTION IF EXISTS ccvec.create_load_stage();
