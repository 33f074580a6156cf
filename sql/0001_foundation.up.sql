-- ccvec foundation: catalog image table, model registry, features, embeddings, load bookkeeping.
-- Everything lives in schema ccvec so it can sit beside an existing Openverse-style catalog.

CREATE SCHEMA IF NOT EXISTS ccvec;
CREATE EXTENSION IF NOT EXISTS vector;

-- The Openverse catalog's `image` table (same column names and types), for users without one.
-- A local folder has no licence or provider, so fewer columns are NOT NULL than upstream.
CREATE TABLE ccvec.image (
    identifier              uuid PRIMARY KEY,
    created_on              timestamptz NOT NULL DEFAULT now(),
    updated_on              timestamptz NOT NULL DEFAULT now(),
    ingestion_type          varchar(80),
    provider                varchar(80),
    source                  varchar(80),
    foreign_identifier      varchar(3000),
    foreign_landing_url     varchar(1000),
    url                     varchar(3000) NOT NULL,
    thumbnail               varchar(3000),
    width                   integer,
    height                  integer,
    filesize                integer,
    license                 varchar(50),
    license_version         varchar(25),
    creator                 varchar(2000),
    creator_url             varchar(2000),
    title                   varchar(5000),
    meta_data               jsonb,
    tags                    jsonb,
    watermarked             boolean,
    last_synced_with_source timestamptz,
    removed_from_source     boolean NOT NULL DEFAULT false,
    filetype                varchar(5),
    category                varchar(80),
    standardized_popularity double precision
);
CREATE INDEX image_provider_idx ON ccvec.image (provider);

-- What every downstream query reads. By default ccvec's own table; ccvec.use_catalog() points it
-- at an existing catalog table instead (see docs/catalog.md). Fixed output types keep
-- CREATE OR REPLACE VIEW possible whatever the source's varchar lengths are.
CREATE VIEW ccvec.catalog AS
SELECT identifier, provider::text, source::text, foreign_identifier::text,
       foreign_landing_url::text, url::text, thumbnail::text, width, height, filesize,
       license::text, license_version::text, creator::text, creator_url::text, title::text,
       meta_data, tags, category::text, watermarked, removed_from_source,
       standardized_popularity, created_on
FROM ccvec.image;

CREATE FUNCTION ccvec.use_catalog(source regclass) RETURNS void
LANGUAGE plpgsql AS $$
DECLARE
    wanted  text[] := ARRAY['identifier','provider','source','foreign_identifier',
                            'foreign_landing_url','url','thumbnail','width','height','filesize',
                            'license','license_version','creator','creator_url','title',
                            'meta_data','tags','category','watermarked','removed_from_source',
                            'standardized_popularity','created_on'];
    casts   text[] := ARRAY['uuid','text','text','text','text','text','text','integer','integer',
                            'integer','text','text','text','text','text','jsonb','jsonb','text',
                            'boolean','boolean','double precision','timestamptz'];
    present text[];
    cols    text := '';
    i       int;
BEGIN
    SELECT array_agg(attname::text) INTO present
    FROM pg_attribute WHERE attrelid = source AND attnum > 0 AND NOT attisdropped;
    IF NOT present @> ARRAY['identifier','url'] THEN
        RAISE EXCEPTION 'catalog table % needs at least the columns identifier and url', source;
    END IF;
    FOR i IN 1 .. array_length(wanted, 1) LOOP
        cols := cols || CASE WHEN i > 1 THEN ', ' ELSE '' END ||
                CASE WHEN wanted[i] = ANY(present)
                     THEN format('%I::%s AS %I', wanted[i], casts[i], wanted[i])
                     ELSE format('NULL::%s AS %I', casts[i], wanted[i]) END;
    END LOOP;
    EXECUTE format('CREATE OR REPLACE VIEW ccvec.catalog AS SELECT %s FROM %s', cols, source);
END $$;
COMMENT ON FUNCTION ccvec.use_catalog(regclass) IS
    'Point ccvec.catalog at an existing Openverse-style image table; ccvec.image by default.';

-- Embedding models: vectors of different models never mix (one row per model; embeddings key on it).
CREATE TABLE ccvec.model (
    name           text PRIMARY KEY CHECK (name ~ '^[a-z0-9][a-z0-9_.-]*$'),
    version        text NOT NULL,
    weights_sha256 text,
    onnx_sha256    text NOT NULL,
    dim            integer NOT NULL CHECK (dim BETWEEN 1 AND 4000),
    spec           jsonb NOT NULL,
    registered_at  timestamptz NOT NULL DEFAULT now()
);

-- Model-independent features, computed once per image from one decode.
CREATE TABLE ccvec.image_feature (
    identifier     uuid PRIMARY KEY,
    phash          bigint NOT NULL,
    content_sha256 bytea NOT NULL CHECK (octet_length(content_sha256) = 32),
    width          integer NOT NULL,
    height         integer NOT NULL,
    computed_at    timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX image_feature_sha_idx ON ccvec.image_feature (content_sha256);

-- One row per (model, image); L2-normalised halfvec. HNSW indexes are partial per model on
-- (embedding::halfvec(dim)), the pgvector way to index several dimensions in one column.
CREATE TABLE ccvec.image_embedding (
    model       text NOT NULL REFERENCES ccvec.model (name) ON DELETE CASCADE,
    identifier  uuid NOT NULL,
    embedding   halfvec NOT NULL,
    computed_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (model, identifier)
);

CREATE FUNCTION ccvec.check_embedding_dim() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE expected integer;
BEGIN
    SELECT dim INTO expected FROM ccvec.model WHERE name = NEW.model;
    IF vector_dims(NEW.embedding) <> expected THEN
        RAISE EXCEPTION 'embedding for % has % dimensions, model % has %',
            NEW.identifier, vector_dims(NEW.embedding), NEW.model, expected;
    END IF;
    RETURN NEW;
END $$;
CREATE TRIGGER image_embedding_dim BEFORE INSERT OR UPDATE ON ccvec.image_embedding
    FOR EACH ROW EXECUTE FUNCTION ccvec.check_embedding_dim();

-- Load bookkeeping: one row per `ccvec load`, one row per input that could not be loaded.
CREATE TABLE ccvec.load_run (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    source      text NOT NULL,
    model       text,
    started_at  timestamptz NOT NULL DEFAULT now(),
    finished_at timestamptz,
    loaded      integer NOT NULL DEFAULT 0,
    skipped     integer NOT NULL DEFAULT 0,
    failed      integer NOT NULL DEFAULT 0
);

CREATE TABLE ccvec.load_error (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    run_id      bigint REFERENCES ccvec.load_run (id) ON DELETE CASCADE,
    source      text NOT NULL,
    stage       text NOT NULL,
    reason      text NOT NULL,
    occurred_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX load_error_source_idx ON ccvec.load_error (source);
