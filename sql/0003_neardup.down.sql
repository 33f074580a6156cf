DROP VIEW IF EXISTS ccvec.duplicate_group;
DROP FUNCTION IF EXISTS ccvec.assign_duplicates(bigint, integer);
DROP FUNCTION IF EXISTS ccvec.canonical_order_sql(text[]);
DROP TABLE IF EXISTS ccvec.duplicate_member;
DROP TABLE IF EXISTS ccvec.duplicate_run;
DROP FUNCTION IF EXISTS ccvec.source_class_rank(text);
DROP TABLE IF EXISTS ccvec.provider_class;
DROP FUNCTION IF EXISTS ccvec.hamming_pairs(integer);
DROP FUNCTION IF EXISTS ccvec.hamming_neighbours(bigint, integer);
DROP FUNCTION IF EXISTS ccvec.mih_probe_cost();
DROP FUNCTION IF EXISTS ccvec.mih_candidates(bigint, integer);
DO $$ DECLARE idx record; BEGIN
    FOR idx IN SELECT indexname FROM pg_indexes
               WHERE schemaname = 'ccvec' AND indexname LIKE 'image\_feature\_mih\_%' LOOP
        EXECUTE format('DROP INDEX ccvec.%I', idx.indexname);
    END LOOP;
END $$;
DROP FUNCTION IF EXISTS ccvec.configure_mih(integer, integer);
DROP FUNCTION IF EXISTS ccvec.binomial(integer, integer);
DROP FUNCTION IF EXISTS ccvec.mih_chunks(integer[]);
DROP FUNCTION IF EXISTS ccvec.hamming(bigint, bigint);
DROP TABLE IF EXISTS ccvec.mih_mask;
DROP TABLE IF EXISTS ccvec.mih_config;
