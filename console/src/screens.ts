// Every screen of the console: its path under /console/t/<tenant>, its title, whether the
// navigation lists it, and what renders it. A new screen is one entry here.
import type { FunctionComponent } from 'preact';
import { AuditScreen } from './screens/audit';
import { BackupsScreen } from './screens/backups';
import { ClientScreen, ClientsScreen } from './screens/clients';
import { InvitationsScreen } from './screens/invitations';
import { KeysScreen } from './screens/keys';
import { OrganisationScreen, OrganisationsScreen } from './screens/organisations';
import { ResourceScreen, ResourcesScreen, RoleScreen, RolesScreen } from './screens/rbac';
import { TenantScreen, TenantsScreen } from './screens/tenants';
import { UserScreen, UsersScreen } from './screens/users';

export interface Screen {
  path: string;
  title: string;
  /** Shown in the navigation. */
  nav: boolean;
  /** Deployment-wide: the navigation lists it to system-tenant administrators only. */
  system?: boolean;
  // biome-ignore lint/suspicious/noExplicitAny: each screen takes its own path parameters
  component: FunctionComponent<any>;
}

export const SCREENS: Screen[] = [
  { path: '/users', title: 'Users', nav: true, component: UsersScreen },
  { path: '/users/:userId', title: 'User', nav: false, component: UserScreen },
  { path: '/invitations', title: 'Invitations', nav: true, component: InvitationsScreen },
  { path: '/organisations', title: 'Organisations', nav: true, component: OrganisationsScreen },
  {
    path: '/organisations/:organisationId',
    title: 'Organisation',
    nav: false,
    component: OrganisationScreen,
  },
  { path: '/resources', title: 'API resources', nav: true, component: ResourcesScreen },
  { path: '/resources/:resourceId', title: 'API resource', nav: false, component: ResourceScreen },
  { path: '/roles', title: 'Roles', nav: true, component: RolesScreen },
  { path: '/roles/:roleId', title: 'Role', nav: false, component: RoleScreen },
  { path: '/clients', title: 'Clients', nav: true, component: ClientsScreen },
  { path: '/clients/:clientId', title: 'Client', nav: false, component: ClientScreen },
  { path: '/audit', title: 'Audit log', nav: true, component: AuditScreen },
  { path: '/keys', title: 'Keys', nav: true, component: KeysScreen },
  { path: '/backups', title: 'Backups', nav: true, system: true, component: BackupsScreen },
  { path: '/tenants', title: 'Tenants', nav: true, component: TenantsScreen },
  { path: '/tenants/:slug', title: 'Tenant', nav: false, component: TenantScreen },
];
