CREATE TABLE `org_domains` (
	`id` text PRIMARY KEY NOT NULL,
	`org_id` text NOT NULL,
	`domain` text NOT NULL,
	`verification_token` text NOT NULL,
	`verified_at` integer,
	`verification_method` text,
	`created_at` integer NOT NULL,
	FOREIGN KEY (`org_id`) REFERENCES `orgs`(`id`) ON UPDATE no action ON DELETE cascade
);
--> statement-breakpoint
CREATE UNIQUE INDEX `org_domains_org_domain_unique` ON `org_domains` (`org_id`,`domain`);--> statement-breakpoint
CREATE UNIQUE INDEX `org_domains_verified_unique` ON `org_domains` (`domain`) WHERE verified_at IS NOT NULL;--> statement-breakpoint
CREATE INDEX `org_domains_domain_idx` ON `org_domains` (`domain`);--> statement-breakpoint
CREATE TABLE `sso_connections` (
	`id` text PRIMARY KEY NOT NULL,
	`org_id` text NOT NULL,
	`type` text NOT NULL,
	`name` text NOT NULL,
	`enabled` integer DEFAULT true NOT NULL,
	`domains` text DEFAULT '[]' NOT NULL,
	`issuer` text,
	`client_id` text,
	`client_secret_sealed` text,
	`scopes` text,
	`issuer_metadata` text,
	`created_at` integer NOT NULL,
	`updated_at` integer NOT NULL,
	FOREIGN KEY (`org_id`) REFERENCES `orgs`(`id`) ON UPDATE no action ON DELETE cascade
);
--> statement-breakpoint
CREATE INDEX `sso_connections_org_idx` ON `sso_connections` (`org_id`);--> statement-breakpoint
CREATE TABLE `sso_transactions` (
	`id` text PRIMARY KEY NOT NULL,
	`protocol` text NOT NULL,
	`connection_id` text NOT NULL,
	`state_hash` text NOT NULL,
	`binding_hash` text NOT NULL,
	`nonce` text,
	`code_verifier` text,
	`request_id` text,
	`return_to` text NOT NULL,
	`created_at` integer NOT NULL,
	`expires_at` integer NOT NULL,
	`consumed_at` integer,
	FOREIGN KEY (`connection_id`) REFERENCES `sso_connections`(`id`) ON UPDATE no action ON DELETE cascade
);
--> statement-breakpoint
CREATE UNIQUE INDEX `sso_transactions_state_hash_unique` ON `sso_transactions` (`state_hash`);--> statement-breakpoint
CREATE INDEX `sso_transactions_expires_idx` ON `sso_transactions` (`expires_at`);--> statement-breakpoint
CREATE TABLE `sso_break_glass` (
	`user_id` text PRIMARY KEY NOT NULL,
	`org_id` text NOT NULL,
	`created_by` text,
	`created_at` integer NOT NULL,
	FOREIGN KEY (`user_id`) REFERENCES `users`(`id`) ON UPDATE no action ON DELETE cascade,
	FOREIGN KEY (`org_id`) REFERENCES `orgs`(`id`) ON UPDATE no action ON DELETE cascade
);
--> statement-breakpoint
CREATE TABLE `sso_identities` (
	`id` text PRIMARY KEY NOT NULL,
	`connection_id` text NOT NULL,
	`subject` text NOT NULL,
	`user_id` text NOT NULL,
	`email` text,
	`created_at` integer NOT NULL,
	`last_login_at` integer,
	FOREIGN KEY (`connection_id`) REFERENCES `sso_connections`(`id`) ON UPDATE no action ON DELETE cascade,
	FOREIGN KEY (`user_id`) REFERENCES `users`(`id`) ON UPDATE no action ON DELETE cascade
);
--> statement-breakpoint
CREATE UNIQUE INDEX `sso_identities_connection_subject_unique` ON `sso_identities` (`connection_id`,`subject`);--> statement-breakpoint
CREATE INDEX `sso_identities_user_idx` ON `sso_identities` (`user_id`);