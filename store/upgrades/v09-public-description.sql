-- v8 -> v9: The advisory's public description

-- The public text the team sets for the advisory (`!sec description`);
-- publishing waits for it, so no placeholder goes public.
ALTER TABLE cases ADD COLUMN public_description TEXT NOT NULL DEFAULT '';
