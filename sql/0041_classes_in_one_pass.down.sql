DROP FUNCTION ccvec.unclassified_embeddings(text, uuid, bigint);
