CREATE OR REPLACE FUNCTION ccvec.folder_images(p_prefix text)
RETURNS TABLE (identifier uuid, url text, filesize integer)
LANGUAGE sql STABLE AS $$
    SELECT i.identifier, i.url::text, i.filesize FROM ccvec.image i WHERE starts_with(i.url::text, p_prefix);
$$;
COMMENT ON FUNCTION ccvec.folder_images(text) IS
    'Every catalog row whose url starts with p_prefix (a folder''s file URI and a slash), with its size in bytes: a load of that folder compares them with the files there now, to report images whose file is gone (renamed, moved or deleted) or changed. Scans ccvec.image (no index on url): meant for folders, not for catalogs of millions loaded from manifests.';
DROP INDEX ccvec.image_file_url_idx;
