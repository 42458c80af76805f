"""The browser side of mfds: admin pages, sessions, login and CSRF.

    auth       who is asking (sessions, HTTP Basic, node token) and CSRF checks
    pages      the server-rendered pages (a Twisted resource over esrt.mfds.api)
    templates  HTML building functions
    static     the style sheet

`RootResource` puts them together with the JSON API: /api/... goes to the API resource,
everything else to the pages.
"""

from twisted.web import resource


class RootResource(resource.Resource):
    """Sends /api/... to the JSON API resource and every other path to the pages."""

    isLeaf = True

    def __init__(self, api_resource, pages):
        super().__init__()
        self.api_resource = api_resource
        self.pages = pages

    def render(self, request):
        path = request.path
        if path == b"/api" or path.startswith(b"/api/"):
            return self.api_resource.render(request)
        return self.pages.render(request)
