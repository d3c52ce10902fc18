ALTER TABLE lots DROP COLUMN warranty_extra_months, DROP COLUMN warranty_extended_to;
ALTER TABLE units DROP COLUMN purchased_on, DROP COLUMN warranty_extra_months,
    DROP COLUMN warranty_extended_to, DROP COLUMN inherited_from, DROP COLUMN inherited_end;
DROP TABLE warranty_extensions;
DROP TABLE registrations;
